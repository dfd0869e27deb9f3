"""MkDocs hook: serve MathJax from the site itself, so the formulas render without a network.

MathJax 3 comes from the PyPI package django-static-mathjax (pinned in .ci/docs; it only ships MathJax's files). Its
``es5`` folder is added to the site as ``assets/mathjax/``: the ``tex-svg.js`` bundle (SVG output: the glyphs are
paths, so no web fonts are needed) and the components it loads on demand (TeX extensions, menu, accessibility).
Nothing is fetched at build time.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

#: the bundles of the es5 folder other than tex-svg.js, and the CHTML output with its fonts, are not needed
_BUNDLE = "tex-svg.js"
_SKIP_PREFIXES = ("output/chtml",)
_TARGET = "assets/mathjax"


def _es5() -> Path:
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise PluginError(
            "MathJax is not installed: pip install django-static-mathjax (bash .ci/docs installs every docs tool)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax" / "es5"
    if not (folder / _BUNDLE).is_file():
        raise PluginError(f"MathJax's {_BUNDLE} is missing from {folder}; reinstall django-static-mathjax")
    return folder


def on_files(files: Files, config) -> Files:
    es5 = _es5()
    for path in sorted(es5.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(es5).as_posix()
        top_level_bundle = "/" not in rel and rel != _BUNDLE
        if top_level_bundle or rel.startswith(_SKIP_PREFIXES):
            continue
        files.append(File.generated(config, f"{_TARGET}/{rel}", abs_src_path=str(path)))
    return files
