"""Sphinx configuration of the scglassbox documentation.

Build (what CI runs; warnings are errors):

    sphinx-build -W --keep-going -b html docs docs/_build/html

The tutorials (``tutorials/*.ipynb``, reached through the ``docs/tutorials`` symlink) are
executed during the build by myst-nb; results are cached in ``docs/_build/.jupyter_cache``
so an unchanged notebook is not re-run.
"""

from __future__ import annotations

import os
from datetime import date
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _package_version
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent

# -- Project ----------------------------------------------------------------------------------
project = "scglassbox"
author = "scglassbox developers"
copyright = f"{date.today().year}, {author}"
try:
    release = _package_version("scglassbox")
except PackageNotFoundError:  # building from a checkout without installing
    release = "0.0.0"
version = ".".join(release.split(".")[:2])

# -- General ----------------------------------------------------------------------------------
extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_design",
]
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "jupyter_execute",
    "**.ipynb_checkpoints",
    "Thumbs.db",
    ".DS_Store",
    "tutorials/README.md",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
master_doc = "index"
nitpicky = False
default_role = "literal"
# Code blocks without a language (e.g. the benchmark report's checks) are plain text.
highlight_language = "text"

# -- MyST and notebooks -----------------------------------------------------------------------
myst_enable_extensions = ["amsmath", "colon_fence", "deflist", "dollarmath", "substitution"]
myst_heading_anchors = 3


def _benchmark_report() -> str:
    """``benchmarks/results/latest.md`` with its headings moved below the page's, if present."""
    report = ROOT / "benchmarks" / "results" / "latest.md"
    if not report.exists():
        return (
            "No benchmark report has been committed yet. Run "
            "`python benchmarks/run.py --out benchmarks/results/latest.md`; this section then "
            "shows the report it writes."
        )
    lines = []
    for line in report.read_text().splitlines():
        if line.startswith("#"):
            line = "###" + line  # '# title' -> '#### title', below this page's '### Latest'
        lines.append(line)
    return "\n".join(lines)


myst_substitutions = {"benchmark_report": _benchmark_report()}
# Execute the tutorials during the build; cache the results under docs/_build.
nb_execution_mode = os.environ.get("NB_EXECUTION_MODE", "cache")
nb_execution_timeout = 300  # seconds per cell
nb_execution_raise_on_error = True  # a failing cell fails the build
nb_execution_show_tb = True
nb_execution_excludepatterns: list[str] = []
nb_merge_streams = True
nb_kernel_rgx_aliases = {".*": "python3"}
# Bokeh's notebook output carries its own mime types next to the application/javascript that
# myst-nb renders; skip them quietly.
suppress_warnings = ["mystnb.unknown_mime_type"]

# -- API reference ----------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": False}
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False  # the return type goes with the Returns text
napoleon_use_ivar = False
# "Returns" sections here are prose (what is written where), not numpydoc "type" lines:
# render them as text under a "Returns" heading.
napoleon_custom_sections = ["Returns"]
napoleon_use_param = True
autodoc_typehints_description_target = "documented_params"
autodoc_typehints_format = "short"

# Cross-links to other projects' docs need the network: only where the network is
# available (Read the Docs) or when asked for, so that the offline build stays warning-free.
if os.environ.get("READTHEDOCS") or os.environ.get("SCGLASSBOX_DOCS_INTERSPHINX"):
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable/", None),
        "scipy": ("https://docs.scipy.org/doc/scipy/", None),
        "pandas": ("https://pandas.pydata.org/docs/", None),
        "matplotlib": ("https://matplotlib.org/stable/", None),
        "anndata": ("https://anndata.readthedocs.io/en/stable/", None),
        "scanpy": ("https://scanpy.readthedocs.io/en/stable/", None),
        "torch": ("https://docs.pytorch.org/docs/stable/", None),
        "lightning": ("https://lightning.ai/docs/pytorch/stable/", None),
        "sklearn": ("https://scikit-learn.org/stable/", None),
        "umap": ("https://umap-learn.readthedocs.io/en/latest/", None),
        "bokeh": ("https://docs.bokeh.org/en/latest/", None),
    }

# -- HTML -------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "scglassbox"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "use_download_button": True,
    "use_fullscreen_button": False,
}
html_show_sourcelink = False


# -- Checks -----------------------------------------------------------------------------------
def _check_tutorials_in_sync(app) -> None:
    """Warn (an error under -W) when a tutorial's .ipynb differs from its .py source.

    The editable sources are ``tutorials/*.py`` (jupytext percent format); the notebooks are
    generated from them with ``jupytext --sync tutorials/*.py``.
    """
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    try:
        import jupytext
    except ImportError:  # jupytext is only needed for this check
        return
    tutorials = ROOT / "tutorials"
    for py in sorted(tutorials.glob("[0-9]*.py")):
        ipynb = py.with_suffix(".ipynb")
        if not ipynb.exists():
            logger.warning("tutorial %s has no notebook: run jupytext --sync %s", py.name, py)
            continue
        want = jupytext.read(py)
        have = jupytext.read(ipynb)
        key = [
            (c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in want.cells
        ]
        got = [
            (c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in have.cells
        ]
        if key != got:
            logger.warning(
                "tutorials/%s is out of date with tutorials/%s: run jupytext --sync tutorials/%s",
                ipynb.name,
                py.name,
                py.name,
            )


def setup(app) -> None:
    """Sphinx hook."""
    app.connect("builder-inited", _check_tutorials_in_sync)
