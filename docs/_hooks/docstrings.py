"""A griffe extension for the API reference: the docstrings are written in reST-flavoured plain text (Sphinx roles,
``>>>`` examples, ``::`` literal blocks); this turns those constructs into Markdown that mkdocstrings renders well.

- ``:func:`~veriloss.metrics.eer``` (any role) becomes an optional cross-reference (a link when the target is
  documented, plain code otherwise; never a warning). ``~`` shows the last component only; relative targets
  (``solve``, ``.streaming``) are resolved against the module of the docstring.
- A run of ``>>>``/``...`` lines with its expected output becomes a fenced ``pycon`` block (Markdown would read
  ``>>>`` as nested block quotes).
- A paragraph ending in ``::`` ends in ``:`` (its indented block is already a Markdown code block).

The source files are not changed; only the text griffe hands to mkdocstrings.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|data|attr|exc|obj|const|ref):`(~?)([^`<>]+?)`")


def _scopes(obj: griffe.Object) -> list[griffe.Object]:
    """The object, then its parents up to the package: where a bare name in its docstring is looked up."""
    out = []
    while obj is not None:
        out.append(obj)
        obj = obj.parent
    return out


def _module_path(obj: griffe.Object) -> str:
    while obj is not None and not obj.is_module:
        obj = obj.parent
    return "" if obj is None else obj.path


def _target(text: str, obj: griffe.Object) -> str:
    if text.startswith("veriloss."):
        return text
    module = _module_path(obj)
    if text.startswith("."):  # relative to the package of the module
        base = module.rsplit(".", 1)[0] if "." in module else module
        stripped = text.lstrip(".")
        for _ in range(len(text) - len(stripped) - 1):
            base = base.rsplit(".", 1)[0]
        return f"{base}.{stripped}"
    first = text.split(".", 1)[0]
    for scope in _scopes(obj):  # a method of the same class, a function of the same module, …
        if first in scope.members:
            return f"{scope.path}.{text}"
    return f"{module}.{text}"


def _roles(text: str, obj: griffe.Object) -> str:
    def link(match: re.Match) -> str:
        short, name = match.group(1) == "~", match.group(2).strip()
        shown = name.lstrip(".").rsplit(".", 1)[-1] if short else name
        return f'<autoref identifier="{_target(name, obj)}" optional><code>{shown}</code></autoref>'

    return _ROLE.sub(link, text)


def _examples(text: str) -> str:
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if not stripped.startswith(">>>"):
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(stripped)]
        block = []
        while i < len(lines) and lines[i].strip():
            block.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        if out and out[-1].strip():
            out.append("")
        out += [f"{indent}```pycon", *(f"{indent}{b}" for b in block), f"{indent}```"]
    return "\n".join(out)


def _literal_markers(text: str) -> str:
    return re.sub(r"(?<=\S)::[ \t]*$", ":", text, flags=re.MULTILINE)


class Docstrings(griffe.Extension):
    """Rewrite every docstring of a package once it is loaded (so that names can be looked up among its members)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._rewrite(pkg)

    def _rewrite(self, obj: griffe.Object) -> None:
        docstring = obj.docstring
        if docstring is not None and docstring.value:
            text = _literal_markers(_examples(docstring.value))
            docstring.value = _roles(text, obj)
        for member in obj.members.values():
            if not member.is_alias:
                self._rewrite(member)
