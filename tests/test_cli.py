import anndata as ad
import numpy as np
import scanpy as sc

from scglassbox import cli
from scglassbox._contributions import exactness
from scglassbox.datasets import synthetic_scrna


def test_demo_writes_h5ad_and_png(tmp_path, capsys):
    assert cli.main(["demo", "--outdir", str(tmp_path), "--epochs", "5", "-q"]) == 0
    out = capsys.readouterr().out
    h5ad, png = tmp_path / "pbmc68k_glassbox.h5ad", tmp_path / "pbmc68k_glassbox.png"
    assert str(h5ad) in out and str(png) in out
    assert png.stat().st_size > 10_000
    back = ad.read_h5ad(h5ad)
    assert exactness(back.obsm["X_glassbox_umap"], back.obsm["glassbox_umap_contributions"]) <= 1e-5
    assert "glassbox_umap_rank_bulk_labels" in back.uns


def test_run_computes_neighbours_from_8192_cells_up(tmp_path, capsys):
    """scanpy 1.11 + pynndescent 0.7 break sc.pp.neighbors from 8,192 cells; this must work."""
    adata = synthetic_scrna(8300, 300, n_types=4, seed=0)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    src = tmp_path / "in.h5ad"
    adata.write_h5ad(src)
    out = tmp_path / "out.h5ad"
    cli.main(["run", str(src), "-o", str(out), "--groupby", "cell_type", "--epochs", "2", "-q"])
    assert "computed one with scanpy defaults" in capsys.readouterr().out
    back = ad.read_h5ad(out)
    assert back.n_obs == 8300 and "neighbors" in back.uns
    assert back.obsm["X_glassbox_umap"].shape == (8300, 2)
    assert back.uns["glassbox_umap"]["exactness"] <= 1e-5
    assert np.isfinite(back.obsm["glassbox_umap_contributions"]).all()


def test_run_bad_input(tmp_path):
    import pytest

    with pytest.raises(SystemExit):
        cli.main(["run", str(tmp_path / "absent.h5ad"), "-o", str(tmp_path / "o.h5ad")])
