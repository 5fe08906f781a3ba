"""Build the API reference from the docstrings, with every warning an error.

    python docs/api.py [OUT]        (default: docs/_build/api; open OUT/index.html)

Every public module of ``bntt_jax`` (none whose name starts with ``_``) gets a page, rendered
by pdoc with Google-style docstrings. A warning (an annotation that does not resolve, a
module that fails to import) stops the build, so the reference never silently loses a page.
"""

from __future__ import annotations

import pkgutil
import sys
import warnings
from pathlib import Path

import pdoc.doc
import pdoc.render

import bntt_jax


def modules() -> list[str]:
    """``bntt_jax`` and each of its public submodules, by name."""
    found = pkgutil.walk_packages(bntt_jax.__path__, "bntt_jax.")
    names = (m.name for m in found if not any(p.startswith("_") for p in m.name.split(".")))
    return ["bntt_jax", *sorted(names)]


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else Path(__file__).parent / "_build" / "api")
    pdoc.render.configure(docformat="google", search=True)
    for package in (bntt_jax, bntt_jax.ttfs):  # the lazy API names, imported (pdoc reads
        for name in package.__all__:  # a module's __dict__)
            getattr(package, name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # every module by name (pdoc's own walk follows a package's __all__, which lists
        # the API's names, not its modules)
        pages = {name: pdoc.doc.Module.from_name(name) for name in modules()}
        for name, module in pages.items():
            page = out / f"{name.replace('.', '/')}.html"
            page.parent.mkdir(parents=True, exist_ok=True)
            page.write_text(pdoc.render.html_module(module, pages))
        (out / "index.html").write_text(pdoc.render.html_index(pages))
        (out / "search.js").write_text(pdoc.render.search_index(pages))
    print(f"API reference: {out / 'index.html'} ({len(pages)} modules)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
