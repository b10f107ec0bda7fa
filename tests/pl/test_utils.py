import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from scglassbox import pl
from scglassbox.pl._utils import palette, panels

from .conftest import assert_same, snapshot

MASK = np.arange(700) % 2 == 0

PLOTS = {
    "glassbox_umap": lambda a, **kw: pl.glassbox_umap(a, color="bulk_labels", **kw),
    "contributions": lambda a, **kw: pl.contributions(a, ["CST3", "LYZ"], view="dim1", **kw),
    "top_feature": lambda a, **kw: pl.top_feature(a, **kw),
    "contribution_bars": lambda a, **kw: pl.contribution_bars(a, groupby="bulk_labels", **kw),
    "contribution_bars_mask": lambda a, **kw: pl.contribution_bars(a, mask=MASK, **kw),
    "contribution_matrixplot": lambda a, **kw: pl.contribution_matrixplot(a, "louvain", **kw),
    "contribution_dotplot": lambda a, **kw: pl.contribution_dotplot(a, "phase", **kw),
    "ranking": lambda a, **kw: pl.ranking(a, **kw),
    "loss": lambda a, **kw: pl.loss(a, **kw),
    "compare_markers": lambda a, **kw: pl.compare_markers(a, "bulk_labels", **kw),
}


@pytest.mark.parametrize("name", PLOTS)
def test_no_side_effects(pbmc_gb, name):
    before = snapshot(pbmc_gb)
    PLOTS[name](pbmc_gb, show=False)
    assert_same(before, snapshot(pbmc_gb))


@pytest.mark.parametrize("name", PLOTS)
def test_show_and_return(pbmc_gb, name):
    fig = PLOTS[name](pbmc_gb, return_fig=True)
    if hasattr(fig, "make_figure"):  # scanpy's MatrixPlot / DotPlot, as scanpy returns them
        fig.make_figure()
        fig = fig.fig
    assert isinstance(fig, Figure)
    out = PLOTS[name](pbmc_gb, show=False)
    axes = list(out.values()) if isinstance(out, dict) else np.ravel([out]).tolist()
    assert axes and all(isinstance(a, Axes) for a in axes)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "FigureCanvasAgg is non-interactive")
        warnings.filterwarnings("ignore", ".*cannot be shown")
        assert PLOTS[name](pbmc_gb, show=True) is None


def test_glassbox_umap_stores_colours_like_scanpy(pbmc_gb):
    """Only the scanpy wrapper may write, and only scanpy's default colours."""
    a = pbmc_gb.copy()
    assert "phase_colors" not in a.uns
    pl.glassbox_umap(a, color="phase", show=False)
    assert len(a.uns["phase_colors"]) == a.obs["phase"].nunique()


def test_panels():
    fig, axs = panels(5, ax=None, ncols=2, panel_size=(2, 2))
    assert len(axs) == 5 and len(fig.axes) == 5
    _, ax = plt.subplots()
    assert panels(1, ax=ax, ncols=4, panel_size=(2, 2)) == (ax.figure, [ax])
    with pytest.raises(ValueError, match="single panel"):
        panels(2, ax=ax, ncols=4, panel_size=(2, 2))


def test_palette(pbmc_gb):
    cats = list(pbmc_gb.obs["bulk_labels"].cat.categories)
    stored = list(pbmc_gb.uns["bulk_labels_colors"])
    assert palette(pbmc_gb, "bulk_labels", cats) == stored
    assert palette(pbmc_gb, "bulk_labels", cats[::-1]) == stored[::-1]
    assert palette(pbmc_gb, "phase", ["G1", "S"]) == ["#1f77b4", "#ff7f0e"]
    assert len(set(palette(None, None, [str(i) for i in range(30)]))) == 30  # default_102


@pytest.mark.parametrize(
    ("func", "kwargs"),
    [
        ("contribution_bars", {"groupby": "bulk_labels", "groups": ["CD19+ B"]}),
        ("loss", {}),
        ("contributions", {"genes": ["CST3"]}),
        ("top_feature", {}),
        ("contribution_matrixplot", {"groupby": "bulk_labels"}),
        ("contribution_dotplot", {"groupby": "bulk_labels"}),
        ("glassbox_umap", {"color": "bulk_labels"}),
    ],
)
def test_save_writes_the_figure_as_scanpy_does(pbmc_gb, tmp_path, func, kwargs):
    import scanpy as sc

    import scglassbox as gb

    exact = tmp_path / "exact" / "plot.png"
    getattr(gb.pl, func)(pbmc_gb, **kwargs, show=False, save=exact)
    assert exact.stat().st_size > 5_000
    before, sc.settings.figdir = sc.settings.figdir, tmp_path / "figures"
    try:
        getattr(gb.pl, func)(pbmc_gb, **kwargs, show=False, save="_suffix.png")
    finally:
        sc.settings.figdir = before
    written = list((tmp_path / "figures").glob("*_suffix.png"))
    assert len(written) == 1 and written[0].stat().st_size > 5_000
