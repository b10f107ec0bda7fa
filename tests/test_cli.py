"""The ``scglassbox`` command: options, checks before any work, atomic outputs, exit codes."""

from __future__ import annotations

import errno
import os
import stat

import anndata as ad
import numpy as np
import pytest
import scanpy as sc

import scglassbox as gb
from scglassbox import cli
from scglassbox._contributions import exactness
from scglassbox.datasets import synthetic_scrna


def _small(n_obs=300, n_vars=20, seed=0):
    adata = synthetic_scrna(n_obs, n_vars, n_types=3, n_markers=3, seed=seed)
    adata.layers["counts"] = adata.X.copy()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    return adata


@pytest.fixture(scope="module")
def small_h5ad(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "small.h5ad"
    _small().write_h5ad(path)
    return path


@pytest.fixture
def src(small_h5ad, tmp_path):
    """A fresh copy of the small input, in its own folder."""
    path = tmp_path / "in.h5ad"
    path.write_bytes(small_h5ad.read_bytes())
    return path


@pytest.fixture
def no_fit(monkeypatch):
    """Fail the test if any work starts (the checks must come first)."""

    def boom(*a, **k):
        raise AssertionError("work started before the checks")

    monkeypatch.setattr(gb.tl, "glassbox_umap", boom)
    monkeypatch.setattr(ad, "read_h5ad", boom)


def _only_error(capsys, code_text):
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("scglassbox: error:"), err
    assert "Traceback" not in err
    assert code_text in lines[0], lines[0]
    return lines[0]


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


def test_demo_writes_h5ad_and_png(tmp_path, capsys):
    assert cli.main(["demo", "--outdir", str(tmp_path), "--epochs", "5", "-q"]) == 0
    out = capsys.readouterr().out
    h5ad, png = tmp_path / "pbmc68k_glassbox.h5ad", tmp_path / "pbmc68k_glassbox.png"
    assert str(h5ad) in out and str(png) in out
    assert png.stat().st_size > 10_000
    back = ad.read_h5ad(h5ad)
    assert exactness(back.obsm["X_glassbox_umap"], back.obsm["glassbox_umap_contributions"]) <= 1e-5
    assert "glassbox_umap_rank_bulk_labels" in back.uns
    # written through a temporary file, with the usual permissions, nothing left behind
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(h5ad.stat().st_mode) == 0o666 & ~umask
    assert _leftovers(tmp_path) == []


def test_demo_runs_clean(tmp_path, capsys, recwarn):
    """A first run on the project's own example: scanpy's PCA reused, no warning anywhere;
    the output folder does not exist yet (as with the default ./scglassbox_demo)."""
    outdir = tmp_path / "new" / "scglassbox_demo"
    assert cli.main(["demo", "--outdir", str(outdir), "--epochs", "2"]) == 0
    captured = capsys.readouterr()
    assert "warning" not in (captured.out + captured.err).lower()
    # Deprecation notices from libraries (scanpy's own set_bad call) are hidden from users.
    shown = [
        w
        for w in recwarn
        if not issubclass(w.category, DeprecationWarning | PendingDeprecationWarning)
    ]
    assert [str(w.message) for w in shown] == []
    back = ad.read_h5ad(outdir / "pbmc68k_glassbox.h5ad")
    assert back.uns["glassbox_umap"]["input"].startswith("reused scanpy's PCA")


def test_run_computes_neighbours_from_8192_cells_up(tmp_path, capsys):
    """scanpy 1.11 + pynndescent 0.7 break sc.pp.neighbors from 8,192 cells; this must work."""
    adata = synthetic_scrna(8200, 20, n_types=4, n_markers=3, seed=0)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    src = tmp_path / "in.h5ad"
    adata.write_h5ad(src)
    out = tmp_path / "out.h5ad"
    code = cli.main(["run", str(src), "-o", str(out), "--epochs", "2", "-q",
                     "--contributions", "none"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "computed one with scanpy defaults" in capsys.readouterr().out
    back = ad.read_h5ad(out)
    assert back.n_obs == 8200 and "neighbors" in back.uns
    assert back.obsp["connectivities"].shape == (8200, 8200)
    assert back.obsm["X_glassbox_umap"].shape == (8200, 2)
    assert np.isfinite(back.obsm["X_glassbox_umap"]).all()


def test_neighbours_fall_back_when_scanpy_and_pynndescent_clash(monkeypatch):
    """With the incompatible pair installed, ensure_neighbors uses scanpy's transformer path."""
    from scglassbox._neighbors import ensure_neighbors

    real = sc.pp.neighbors
    calls = []

    def clash(adata, **kw):
        calls.append(kw.get("transformer"))
        if kw.get("transformer") is None:  # what scanpy 1.11 + pynndescent 0.7 raise
            raise AttributeError("'csr_array' object has no attribute 'getnnz'")
        return real(adata, **kw)

    monkeypatch.setattr(sc.pp, "neighbors", clash)
    adata = _small()
    assert ensure_neighbors(adata)
    assert calls[0] is None and calls[1] is not None
    g = adata.obsp["connectivities"]
    assert g.shape == (adata.n_obs, adata.n_obs) and g.nnz > 0
    assert not ensure_neighbors(adata)  # present now: nothing to do


def test_options_reach_the_fit(src, tmp_path, capsys):
    out = tmp_path / "out.h5ad"
    code = cli.main([
        "run", str(src), "-o", str(out), "--epochs", "2", "-q", "--layer", "counts",
        "--contributions", "none", "--accelerator", "cpu", "--key-added", "gbx",
        "--groupby", "cell_type", "--seed", "3",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    back = ad.read_h5ad(out)
    params = back.uns["gbx"]["params"]
    assert params["source"] == "layers/counts"
    assert int(params["random_state"]) == 3
    assert "gbx_contributions" not in back.obsm and "X_gbx" in back.obsm
    assert "gbx_rank_cell_type" in back.uns
    assert (tmp_path / "out.png").stat().st_size > 10_000


def test_use_raw(src, tmp_path, capsys):
    adata = ad.read_h5ad(src)
    adata.raw = adata.copy()
    adata.write_h5ad(src)
    out = tmp_path / "out.h5ad"
    code = cli.main(["run", str(src), "-o", str(out), "--epochs", "1", "-q", "--use-raw",
                     "--contributions", "none"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert ad.read_h5ad(out).uns["glassbox_umap"]["params"]["source"] == "raw"


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"scglassbox {cli._version()}"
    parser = cli._parser()
    subs = next(a for a in parser._actions if a.dest == "command").choices
    for p in [parser, *subs.values()]:
        for action in p._actions:
            assert action.help, (p.prog, action.dest)
    flags = ("--contributions", "--layer", "--use-raw", "--use-rep", "--accelerator", "--key-added")
    for flag in flags:
        assert flag in subs["run"].format_help()
    assert "exit codes" in subs["run"].format_help()


# ---------------------------------------------------------------- atomic outputs


def test_output_over_input_is_atomic(src, capsys):
    """-o in.h5ad replaces the input only with a complete file."""
    before = ad.read_h5ad(src)
    code = cli.main(["run", str(src), "-o", str(src), "--epochs", "1", "-q",
                     "--contributions", "none"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    back = ad.read_h5ad(src)
    assert "X_glassbox_umap" in back.obsm
    np.testing.assert_array_equal(back.X.toarray() if hasattr(back.X, "toarray") else back.X,
                                  before.X.toarray() if hasattr(before.X, "toarray")
                                  else before.X)  # fmt: skip
    assert _leftovers(src.parent) == []


@pytest.mark.parametrize(
    "fault", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()]
)
def test_disk_full_or_interrupt_keeps_the_input(src, monkeypatch, capsys, fault):
    """A writer dying half-way (full disk, Ctrl-C) leaves the input as it was, and no debris."""
    original = src.read_bytes()

    def dying_writer(self, path, *a, **k):
        with open(path, "wb") as f:
            f.write(b"\x89HDF\r\n partial")  # what a full disk leaves
        raise fault

    monkeypatch.setattr(ad.AnnData, "write_h5ad", dying_writer)
    code = cli.main(["run", str(src), "-o", str(src), "--epochs", "1", "-q",
                     "--contributions", "none"])  # fmt: skip
    if isinstance(fault, OSError):
        assert code == cli.EXIT_OUTPUT
        assert "No space left on device" in _only_error(capsys, "was not replaced")
    else:
        assert code == cli.EXIT_INTERRUPT
        _only_error(capsys, "interrupted")
    assert src.read_bytes() == original
    monkeypatch.undo()
    ad.read_h5ad(src)  # still readable
    assert _leftovers(src.parent) == []
    assert not src.with_suffix(".png").exists()


def test_interrupt_after_the_h5ad_says_it_was_written(src, monkeypatch, capsys):
    """Ctrl-C while the PNG is drawn: the .h5ad is complete, and the message says so."""

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_summary_png", interrupted)
    out = src.parent / "out.h5ad"
    code = cli.main(["run", str(src), "-o", str(out), "--epochs", "1", "-q",
                     "--contributions", "none"])  # fmt: skip
    assert code == cli.EXIT_INTERRUPT
    msg = _only_error(capsys, "was written completely")
    assert str(out) in msg and "no output was written" not in msg
    assert "X_glassbox_umap" in ad.read_h5ad(out).obsm
    assert _leftovers(src.parent) == []


def test_too_little_free_space_is_refused_before_writing(src, monkeypatch, capsys):
    import shutil
    from collections import namedtuple

    original = src.read_bytes()
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 2**20, 2**20))
    code = cli.main(["run", str(src), "-o", str(src), "--epochs", "1", "-q"])
    assert code == cli.EXIT_OUTPUT
    assert "MB are free" in _only_error(capsys, "not enough disk space")
    assert src.read_bytes() == original and _leftovers(src.parent) == []


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 7 MB tmpfs (root only): a real full disk."""
    import subprocess

    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=7m", "tmpfs", str(mnt)],
                         capture_output=True, check=False)  # fmt: skip
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_real_full_disk_keeps_the_input_and_exits_cleanly(small_h5ad, small_tmpfs, capsys):
    src = small_tmpfs / "in.h5ad"
    src.write_bytes(small_h5ad.read_bytes())
    original = src.read_bytes()
    code = cli.main(["run", str(src), "-o", str(src), "--epochs", "1", "-q"])
    assert code == cli.EXIT_OUTPUT
    _only_error(capsys, "not enough disk space")
    assert src.read_bytes() == original
    assert _leftovers(small_tmpfs) == []


def test_no_progress_bar_redrawn_into_a_log(src, tmp_path, capsys):
    """stderr is not a terminal here (as in a log file): no carriage-return redraws."""
    code = cli.main(["run", str(src), "-o", str(tmp_path / "o.h5ad"), "--epochs", "3",
                     "--contributions", "none"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "\r" not in captured.err and "epoch/s" not in captured.err


def test_help_imports_nothing_heavy():
    import subprocess
    import sys

    code = (
        "import sys; from scglassbox import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('scanpy', 'anndata', 'torch', 'lightning') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_negative_seed_is_a_usage_error(src, tmp_path, capsys, no_fit):
    code = cli.main(["run", str(src), "-o", str(tmp_path / "o.h5ad"), "--seed", "-1"])
    assert code == cli.EXIT_USAGE
    _only_error(capsys, "--seed must be an int in [0, 2**32 - 1], got -1")


def test_output_under_proc_is_refused_first(src, capsys, no_fit):
    code = cli.main(["run", str(src), "-o", "/proc/scglassbox-out.h5ad"])
    assert code == cli.EXIT_OUTPUT
    _only_error(capsys, "cannot create files in /proc")


# ---------------------------------------------------------------- checked before any work


def test_output_paths_checked_first(src, tmp_path, capsys, no_fit):
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = [
        (["-o", str(afile / "out.h5ad")], "is a file, not a directory"),
        (["-o", str(afile / "sub" / "out.h5ad")], "is a file, not a directory"),
        (["-o", str(tmp_path / "out.h5ad"), "--png", str(afile / "f.png")], "figure"),
        (["-o", str(tmp_path)], "must end in .h5ad"),
    ]
    for extra, text in cases:
        code = cli.main(["run", str(src), *extra])
        assert code in (cli.EXIT_OUTPUT, cli.EXIT_USAGE), extra
        _only_error(capsys, text)
    assert not (tmp_path / "out.h5ad").exists()
    d = tmp_path / "out.h5ad"
    d.mkdir()
    assert cli.main(["run", str(src), "-o", str(d)]) == cli.EXIT_OUTPUT
    _only_error(capsys, "is a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_output_dir(src, tmp_path, capsys, no_fit):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert cli.main(["run", str(src), "-o", str(ro / "o.h5ad")]) == cli.EXIT_OUTPUT
        _only_error(capsys, "not writable")
    finally:
        ro.chmod(0o700)


def test_unwritable_dir_detected(src, tmp_path, capsys, no_fit, monkeypatch):
    """The permission check (simulated: the tests may run as root)."""
    monkeypatch.setattr(os, "access", lambda p, mode: False)
    assert cli.main(["run", str(src), "-o", str(tmp_path / "o.h5ad")]) == cli.EXIT_OUTPUT
    _only_error(capsys, "not writable")


@pytest.mark.parametrize(
    ("key", "text"),
    [("a/b", "'/'"), ("", "non-empty"), ("pca", "scanpy"), ("neighbors", "scanpy"),
     ("umap", "scanpy")],
)  # fmt: skip
def test_bad_key_added(src, tmp_path, capsys, no_fit, key, text):
    out = tmp_path / "out.h5ad"
    assert cli.main(["run", str(src), "-o", str(out), "--key-added", key]) == cli.EXIT_USAGE
    _only_error(capsys, text)
    assert not out.exists()


def test_bad_input_files(tmp_path, capsys, no_fit):
    out = str(tmp_path / "o.h5ad")
    csv = tmp_path / "data.csv"
    csv.write_text("a,b\n1,2\n")
    assert cli.main(["run", str(csv), "-o", out]) == cli.EXIT_USAGE
    _only_error(capsys, "not an .h5ad file")
    assert cli.main(["run", str(tmp_path / "absent.h5ad"), "-o", out]) == cli.EXIT_USAGE
    _only_error(capsys, "does not exist")


def test_corrupt_input_and_bad_columns(src, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(gb.tl, "glassbox_umap", lambda *a, **k: pytest.fail("fit started"))
    out = str(tmp_path / "o.h5ad")
    bad = tmp_path / "bad.h5ad"
    bad.write_text("not hdf5")
    assert cli.main(["run", str(bad), "-o", out]) == cli.EXIT_USAGE
    _only_error(capsys, "cannot read")
    for extra, text in [
        (["--groupby", "nope"], "--groupby: groupby='nope' is not a column of adata.obs"),
        (["--layer", "nope"], "--layer: layer 'nope' not found"),
        (["--use-raw"], "--use-raw: the expression is adata.raw, but adata.raw is None"),
        (["--use-rep", "X_harmony"], "--use-rep: use_rep='X_harmony' is not in adata.obsm"),
        (["--batch-key", "nope"], "--batch-key: batch_key='nope' is not a column of adata.obs"),
        (["--use-raw", "--layer", "counts"], "--use-raw: Pass either layer or use_raw=True"),
        (["--epochs", "0"], "--epochs"),
    ]:
        assert cli.main(["run", str(src), "-o", out, *extra]) == cli.EXIT_USAGE, extra
        _only_error(capsys, text)
    assert not os.path.exists(out)


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["run"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        cli.main(["run", "x.h5ad", "-o", "y.h5ad", "--contributions", "bogus"])
    assert e.value.code == 2


def test_fit_failure_exit_4(src, tmp_path, capsys, monkeypatch):
    def fail(*a, **k):
        raise RuntimeError("out of cheese")

    monkeypatch.setattr(gb.tl, "glassbox_umap", fail)
    out = tmp_path / "o.h5ad"
    assert cli.main(["run", str(src), "-o", str(out)]) == cli.EXIT_FIT
    _only_error(capsys, "out of cheese")
    assert not out.exists() and _leftovers(tmp_path) == []
