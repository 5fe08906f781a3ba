"""MkDocs hook: the docstrings' Sphinx roles (``:func:`lif_step```, ``:mod:`~bntt_jax.spike```)
rendered as links to the object's entry in the API reference where it has one, and as code
where it has none, instead of the raw role. (mkdocs.yml loads it; it is not a page.)"""

from __future__ import annotations

import re
from typing import Any

# A role as Markdown has rendered it: ":func:<code>name</code>", "~" to show the last part only.
ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|obj|exc):<code>(~?)([\w.]+)</code>")
# The heading of a module's entry, which sets where a short name is looked up.
MODULE = re.compile(
    r'id="([\w.]+)" class="doc doc-heading">\s*<span class="doc doc-object-name doc-module-name">'
)


def link_roles(html: str) -> str:
    """Every role of ``html`` as an optional cross-reference (mkdocs-autorefs resolves it to a
    link, or leaves the name as code): a name is looked up in the module whose entry it is in,
    then as written."""
    events = sorted(
        [(m.start(), "module", m) for m in MODULE.finditer(html)]
        + [(m.start(), "role", m) for m in ROLE.finditer(html)],
        key=lambda e: e[0],
    )
    module, out, done = "", [], 0
    for start, kind, match in events:
        if kind == "module":
            module = match.group(1)
            continue
        short, name = match.group(1) == "~", match.group(2)
        title = f"<code>{name.rsplit('.', 1)[-1] if short else name}</code>"
        identifier = f"{module}.{name}" if module and not name.startswith(module) else name
        out += [html[done:start], f'<autoref identifier="{identifier}" slug="{name}" optional>']
        out += [title, "</autoref>"]
        done = match.end()
    return "".join([*out, html[done:]])


def on_page_content(html: str, **kwargs: Any) -> str:
    return link_roles(html)
