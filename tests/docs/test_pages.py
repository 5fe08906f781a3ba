"""The documentation's shape, without building it: every block a language the tests run (or
output), every public module on one reference page, a short README that links to what exists,
no time for an entry but the time table's, nothing that points outside the repository.
(`mkdocs build --strict` in CI checks the links and anchors of the site itself; the e2e tier
runs every block: tests/e2e/test_docs.py.)"""

from __future__ import annotations

import pkgutil
import re

import bntt_jax
import experiments
from experiments.core import estimates
from tests.helpers.pages import DOCS, LANGUAGES, ROOT, blocks, pages

# A duration as prose states one: "12 s", "3 minutes", "about 2 hours".
DURATION = re.compile(r"\b\d+(\.\d+)?\s?(s|sec|seconds|min|minutes|hours?|days?)\b")
# ... followed by the time table's words.
ON_CORES = re.compile(r"\d+\s?(s|min|minutes|hours?)\b[^.]*? on 2 (CPU )?cores")


def test_every_block_is_code_the_tests_run_or_output():
    """`python` and `bash` blocks are run by tests/e2e/test_docs.py; `text` is output or a
    listing. A block without a language would be neither checked nor highlighted."""
    found = blocks()
    assert len(found) > 20
    for block in found:
        assert block.language in LANGUAGES, f"{block.where()}: ```{block.language}"


def test_every_public_module_is_on_one_reference_page():
    """The API reference lists each public module (no part starting with `_`) once, so a new
    module cannot be left out of it silently."""
    found = pkgutil.walk_packages(bntt_jax.__path__, "bntt_jax.")
    public = {"bntt_jax"} | {
        m.name for m in found if not any(p.startswith("_") for p in m.name.split("."))
    }
    listed = [
        line.removeprefix("::: ").strip()
        for page in sorted((DOCS / "reference").glob("*.md"))
        for line in page.read_text().splitlines()
        if line.startswith("::: ")
    ]
    assert len(listed) == len(set(listed)), "a module is on two reference pages"
    assert public <= set(listed), f"not in the API reference: {sorted(public - set(listed))}"
    assert {"experiments", "experiments.core.checkpoints"} <= set(listed)


def test_every_page_is_in_the_sites_navigation():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in DOCS.rglob("*"):
        if page.suffix in (".md", ".ipynb"):
            assert str(page.relative_to(DOCS)) in nav, f"{page} is not in mkdocs.yml's nav"


def test_the_readme_is_a_short_landing_page_whose_links_exist():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    links = re.findall(r"\]\(([^)#]+)(#[^)]*)?\)", text)
    assert len(links) > 10
    for target, anchor in links:
        if target.startswith("http"):
            continue
        path = ROOT / target
        assert path.exists(), f"README links to {target}, which does not exist"
        if anchor:  # a heading of that page, as MkDocs makes its anchor
            headings = re.findall(r"^#+ (.+)$", path.read_text(), re.MULTILINE)
            slugs = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}
            assert anchor[1:] in slugs, f"README links to {target}{anchor}: no such heading"


def _paragraphs(text: str) -> list[str]:
    """A page's prose: paragraphs without code blocks, table rows, headings or comments."""
    text = re.sub(r"```.*?```|<!--.*?-->", "", text, flags=re.DOTALL)
    prose = "\n".join(
        "" if line.lstrip().startswith(("|", "#")) else line for line in text.splitlines()
    )
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", prose) if p.strip()]


def test_no_page_states_a_time_for_an_entry_but_the_time_table():
    """An entry's time comes from one source (experiments/timings.json, printed by --list and
    the time table, which tests/experiments/test_preflight.py checks): a sentence that names an
    entry and a duration would go stale when the entry is measured again."""
    names = experiments.names()
    assert "digits_bntt" in names and estimates.describe("digits_bntt")
    for page in pages():
        for paragraph in _paragraphs(page.read_text()):
            for sentence in re.split(r"(?<=\.)\s", paragraph):
                named = [n for n in names if f"`{n}`" in sentence]
                if (named or ON_CORES.search(sentence)) and DURATION.search(sentence):
                    raise AssertionError(
                        f"{page.relative_to(ROOT)}: {sentence!r} states a time for {named}; "
                        "link the time table instead"
                    )


def test_no_page_points_outside_the_repository():
    """Users have the repository only: no page cites an internal guide or an issue."""
    for page in [*pages(), *DOCS.rglob("*.ipynb")]:
        text = page.read_text()
        assert "GUIDE" not in text and "../shared" not in text, page
        assert not re.search(r"\bissue #?\d+|\(#\d+\)", text, re.IGNORECASE), page


def test_no_docstring_or_message_points_outside_the_repository():
    """Users have the repository only: no file of it cites an internal guide or issue."""
    files = [
        p
        for folder in ("bntt_jax", "experiments", "benchmarks", "docs")
        for p in (ROOT / folder).rglob("*")
        if p.suffix in (".py", ".md", ".ipynb", ".cc")
    ]
    assert len(files) > 20
    for path in files:
        text = path.read_text()
        assert "GUIDE" not in text and "../shared" not in text, path
        assert not re.search(r"\bissue #?\d+|\(#\d+\)", text, re.IGNORECASE), path


def test_the_docstrings_roles_become_references_to_their_module_or_as_written():
    """docs/hooks.py: ``:func:`lif_step``` inside bntt_jax.lif's entry refers to
    bntt_jax.lif.lif_step (its own name as the fallback); ``~`` shows the last part only."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("hooks", DOCS / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    heading = (
        '<h2 id="bntt_jax.lif" class="doc doc-heading">\n'
        '  <span class="doc doc-object-name doc-module-name">bntt_jax.lif</span></h2>'
    )
    html = (
        "<p>see :mod:<code>~bntt_jax.spike</code></p>"
        + heading
        + "<p>as in :func:<code>lif_step</code> and :class:<code>bntt_jax.lif.Reset</code>.</p>"
    )
    out = hooks.link_roles(html)
    assert ":func:" not in out and ":mod:" not in out and ":class:" not in out
    assert '<autoref identifier="bntt_jax.spike" slug="~bntt_jax.spike"' not in out
    assert (
        '<autoref identifier="bntt_jax.spike" slug="bntt_jax.spike" optional><code>spike</code>'
        in out
    )
    assert (
        '<autoref identifier="bntt_jax.lif.lif_step" slug="lif_step" optional>'
        "<code>lif_step</code></autoref>"
    ) in out
    assert '<autoref identifier="bntt_jax.lif.Reset" slug="bntt_jax.lif.Reset" optional>' in out
    assert out.startswith("<p>see ") and heading in out
