"""Top contributors per group against the differential-expression markers of scanpy."""

from __future__ import annotations

import os
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .. import _keys
from .._docs import doc_params
from ..get._markers import de_markers, overlap_rows
from . import _read as v
from ._bars import BAR_COLOR
from ._matrix import top_genes_per_group
from ._utils import finish


def marker_overlap(
    adata: AnnData,
    groupby: str,
    *,
    n_genes: int = 20,
    view: str = "normed_l2",
    key: str = _keys.DEFAULT_KEY,
    rank_genes_key: str = "rank_genes_groups",
) -> pd.DataFrame:
    """Per group: top ``n_genes`` contributors vs top ``n_genes`` markers among genes used.

    Same definition as the ``marker_overlap`` of :func:`scglassbox.tl.rank_contributions`.

    Returns
    -------
    DataFrame indexed by group with ``n_cells``, ``overlap``, ``fraction``, ``shared``,
    ``top_contributors`` and ``markers`` (the last three as lists).
    """
    names = de_markers(adata, groupby, rank_genes_key, required=True)
    cat = v.categorical(adata, groupby)
    groups = [g for g in map(str, cat.categories) if g in names.columns]
    if not groups:
        raise ValueError(f"no group of adata.obs[{groupby!r}] in adata.uns[{rank_genes_key!r}].")
    top, _ = top_genes_per_group(adata, groupby, n_genes=n_genes, view=view, key=key, groups=groups)
    counts = pd.Series(np.asarray(cat)).value_counts()
    rows = overlap_rows(top, names, set(v.gene_names(adata, key)), n_genes)
    for row in rows:
        row["n_cells"] = int(counts.get(row["group"], 0))
    return pd.DataFrame(rows).set_index("group")


@doc_params
def compare_markers(
    adata: AnnData,
    groupby: str,
    *,
    n_genes: int = 20,
    view: str = "normed_l2",
    key: str = _keys.DEFAULT_KEY,
    rank_genes_key: str = "rank_genes_groups",
    show: bool | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
    save: str | os.PathLike | bool | None = None,
) -> Figure | Axes | None:
    """Overlap of each group's top contributors with its differential-expression markers.

    For each group: how many of its ``n_genes`` largest mean contributors are among its top
    ``n_genes`` markers from :func:`scanpy.tl.rank_genes_groups` (markers restricted to the
    genes the model used), with the shared genes listed next to the bar. The dashed line is
    the overlap expected by chance, ``n_genes**2 / n_genes_used``.

    Parameters
    ----------
    {adata}
    groupby
        The ``groupby`` that :func:`scanpy.tl.rank_genes_groups` was run with.
    n_genes
        Top contributors and top markers compared per group.
    {view}
    {key}
    rank_genes_key
        Where :func:`scanpy.tl.rank_genes_groups` stored its result.
    {show}
    ax
        Draw the bars into this axes (the list of shared genes is then left out).
    {return_fig}
    {save}

    Returns
    -------
    The bar axes when ``show=False``, the figure when ``return_fig=True``, else ``None``.

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata)
    >>> sc.tl.rank_genes_groups(adata, "bulk_labels")
    >>> gb.pl.compare_markers(adata, "bulk_labels")

    .. image:: /_static/plots/compare_markers.png
    """
    df = marker_overlap(
        adata, groupby, n_genes=n_genes, view=view, key=key, rank_genes_key=rank_genes_key
    )
    n_used = len(v.gene_names(adata, key))
    height = 1.3 + 0.38 * len(df)
    if ax is None:
        fig, (ax, tax) = plt.subplots(
            1,
            2,
            figsize=(10, height),
            sharey=True,
            width_ratios=[1, 2.2],
            layout="constrained",
        )
    else:
        fig, tax = ax.figure, None
    y = np.arange(len(df))[::-1]
    ax.barh(y, df["overlap"], color=BAR_COLOR, height=0.7)
    chance = n_genes * min(n_genes, n_used) / max(n_used, 1)
    ax.axvline(chance, color="0.3", ls="--", lw=1)
    ax.set_yticks(y, labels=[f"{g} (n={n})" for g, n in zip(df.index, df["n_cells"], strict=True)])
    ax.set_ylim(-0.6, len(df) - 0.4)
    ax.set_xlim(0, n_genes)
    ax.set_xlabel(f"shared genes (of top {n_genes})\n- - - expected by chance: {chance:.1f}")
    title = f"top {n_genes} contributors vs top {n_genes} markers ({rank_genes_key})"
    if tax is None:
        ax.set_title(title)
    else:
        fig.suptitle(title)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if tax is not None:
        tax.set_axis_off()
        tax.set_title("shared genes", loc="left")
        for yi, shared in zip(y, df["shared"], strict=True):
            text = ", ".join(shared) if shared else "(none)"
            text = textwrap.shorten(text, width=90, placeholder=" ...")
            tax.text(0, yi, text, va="center", ha="left", fontsize="small")
    return finish(fig, ax, "gb_compare_markers", show=show, return_fig=return_fig, save=save)
