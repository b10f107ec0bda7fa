"""Signature and docstring conventions of every public function (after scanpy's own test)."""

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import scglassbox as gb

SRC = Path(gb.__file__).parent
PUBLIC = [
    (mod, name, getattr(getattr(gb, mod), name))
    for mod in ("tl", "pl", "get")
    for name in getattr(gb, mod).__all__
]
IDS = [f"{m}.{n}" for m, n, _ in PUBLIC]
#: Functions that take no AnnData first, with the reason.
NOT_ADATA_FIRST = {"pl.save_html": "writes a Bokeh layout, not an AnnData"}


def documented_params(doc: str) -> set[str]:
    """Parameter names of a numpydoc ``Parameters`` section (``a, b`` lines count for both)."""
    section = re.search(r"Parameters\n\s*-+\n(.*?)(?:\n\s*\n\s*[A-Z]\w+\n\s*-+\n|\Z)", doc, re.S)
    assert section, "no Parameters section"
    names = set()
    for line in section.group(1).splitlines():
        if line.strip() and not line[0].isspace():  # getdoc dedents: names at column 0
            for part in line.strip().split(","):
                names.add(part.strip().lstrip("*"))
    return names


@pytest.mark.parametrize(("mod", "name", "func"), PUBLIC, ids=IDS)
def test_signature_conventions(mod, name, func):
    sig = inspect.signature(func)
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert len(positional) <= 3, f"{mod}.{name}: more than 3 positional parameters"
    if f"{mod}.{name}" not in NOT_ADATA_FIRST:
        assert params[0].name == "adata", f"{mod}.{name}: adata must come first"
    if "copy" in sig.parameters:
        assert "key_added" in sig.parameters, f"{mod}.{name}: copy without key_added"
        assert "AnnData | None" in str(sig.return_annotation)
    if mod == "pl" and name not in ("explore", "save_html"):
        for p in ("show", "return_fig", "save"):
            assert p in sig.parameters, f"pl.{name} lacks {p!r} (scanpy's plot convention)"


@pytest.mark.parametrize(("mod", "name", "func"), PUBLIC, ids=IDS)
def test_every_parameter_documented(mod, name, func):
    doc = inspect.getdoc(func)
    assert doc and "Returns\n-------" in doc, f"{mod}.{name}: no Returns section"
    wanted = {p for p in inspect.signature(func).parameters if p != "self"}
    missing = wanted - documented_params(doc)
    assert not missing, f"{mod}.{name}: undocumented parameters {sorted(missing)}"


@pytest.mark.parametrize(("mod", "name", "func"), PUBLIC, ids=IDS)
def test_public_functions_have_examples(mod, name, func):
    doc = inspect.getdoc(func)
    assert "Examples\n--------" in doc, f"{mod}.{name}: no Examples section"
    examples = doc.split("Examples\n--------", 1)[1]
    assert f"gb.{mod}.{name}(" in examples, f"{mod}.{name}: its Examples never call it"


DOCS = Path(__file__).parents[1] / "docs"


def test_static_plots_are_shown_and_exist():
    """Each image in docs/_static/plots is shown by a docstring or a page, and exists."""
    shown = {n for _, _, f in PUBLIC for n in re.findall(r"/_static/plots/([\w.-]+)", f.__doc__)}
    on_disk = {p.name for p in (DOCS / "_static" / "plots").glob("*.png")}
    pages = " ".join(f.read_text() for f in DOCS.glob("*.md"))
    unused = {n for n in on_disk - shown if f"_static/plots/{n}" not in pages}
    assert shown <= on_disk, f"docstrings show missing images {sorted(shown - on_disk)}"
    assert not unused, f"images shown nowhere {sorted(unused)}"


#: Top-level private modules that belong to the AnnData side (scanpy's logging and graphs).
ANNDATA_SIDE = {"_logging": "logs through scanpy", "_neighbors": "runs sc.pp.neighbors"}
#: Every other top-level private module is the AnnData-free core: a new one is covered too.
CORE = sorted(
    p.stem for p in SRC.glob("_*.py") if p.stem != "__init__" and p.stem not in ANNDATA_SIDE
)


def test_core_list_is_complete():
    assert len(CORE) >= 19 and "_estimator" in CORE and "_quality" in CORE
    assert {"_chunks", "_graph", "_initial_layout"} <= set(CORE)


def test_chunk_sizes_module_imports_nothing():
    """Every layer reads its chunk sizes from _chunks, so it must import nothing itself."""
    tree = ast.parse((SRC / "_chunks.py").read_text())
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    assert all(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in imports)


@pytest.mark.parametrize("module", CORE)
def test_core_imports_no_anndata_or_pandas(module):
    tree = ast.parse((SRC / f"{module}.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & {"anndata", "pandas", "scanpy"}, f"{module} imports {imported}"


def test_import_is_light_and_changes_no_environment():
    code = (
        "import os, sys; before = dict(os.environ); import scglassbox; "
        "assert 'torch' not in sys.modules and 'lightning' not in sys.modules, 'heavy import'; "
        "assert dict(os.environ) == before, 'environment changed'; "
        "scglassbox.GlassBoxUMAP; assert 'torch' in sys.modules; "
        # torch and Lightning set variables of their own; ours must not outlive the import.
        "assert 'OMP_WAIT_POLICY' not in os.environ, 'OMP_WAIT_POLICY left set'"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "OMP_WAIT_POLICY"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_reading_and_plotting_results_does_not_load_torch():
    """gb.get and gb.pl read stored results; torch loads only when a model recomputes."""
    code = (
        "import sys, scglassbox.get, scglassbox.pl; "
        "heavy = sorted({'torch', 'lightning'} & set(sys.modules)); assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
