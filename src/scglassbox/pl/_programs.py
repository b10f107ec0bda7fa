"""Gene programs: their ranking per group, and their contribution on the embedding."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .. import _keys
from .._docs import doc_params
from ..get import _programs as gp
from . import _read as v
from ._embedding import PANEL_SIZE, _panel, colorbar_label
from ._utils import finish, panels


@doc_params
def program_contributions(
    adata: AnnData,
    gene_sets: gp.GeneSets,
    *,
    programs: str | Sequence[str] | None = None,
    view: str = "normed_l2",
    overlap: str = "share",
    key: str = _keys.DEFAULT_KEY,
    ncols: int = 4,
    show: bool | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
    save: str | os.PathLike | bool | None = None,
    **kwargs: Any,
) -> Figure | Axes | list[Axes] | None:
    """The embedding coloured by each gene program's contribution, one panel per program.

    A program's contribution is the exact sum of its genes'
    (:func:`~scglassbox.get.program_contributions`). ``'normed_l2'`` shows its share of each
    cell's explanation (the sets and ``'rest'`` share 1); ``'dim1'``, ``'dim2'``... its signed
    push along that dimension (diverging colours, centred on 0).

    Parameters
    ----------
    {adata}
    gene_sets
        As for :func:`~scglassbox.get.program_contributions`.
    programs
        Which sets to draw (default: all, without ``'rest'``; ``'rest'`` may be named).
    {view}
    overlap
        As for :func:`~scglassbox.get.program_contributions`.
    {key}
    {panels}
    **kwargs
        Passed on to :func:`scanpy.pl.embedding` (``size``, ``cmap``, ``vmax``...).

    Returns
    -------
    {plot_returns}

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata, quiet=True)
    >>> sets = gb.datasets.pbmc_gene_sets()
    >>> gb.pl.program_contributions(adata, sets)

    .. image:: /_static/plots/program_contributions.png
    """
    checked = v.check_view(adata, view, key)
    values, names = gp.program_contributions(adata, gene_sets, overlap=overlap, key=key)
    chosen = (
        names[:-1]
        if programs is None
        else ([programs] if isinstance(programs, str) else list(programs))
    )
    unknown = [p for p in chosen if p not in names]
    if unknown or not chosen:
        raise ValueError(f"programs {unknown or chosen} are not among the gene sets {names}.")
    values = checked.reduce(values if checked.signed else values.astype(np.float64))
    emb = v.embedding(adata, key)
    fig, axs = panels(len(chosen), ax=ax, ncols=ncols, panel_size=PANEL_SIZE)
    label = colorbar_label(checked, key).replace("position (", "position, program (")
    for name, a in zip(chosen, axs, strict=True):
        col = values[:, names.index(name)].astype(np.float32)
        _panel(col, emb, adata.obs_names, key=key, title=name, ax=a,
               signed=checked.signed, kwargs=kwargs, cbar_label=label)  # fmt: skip
    return finish(fig, axs, "gb_program_contributions", show=show, return_fig=return_fig,
                  save=save)  # fmt: skip


@doc_params
def rank_programs(
    adata: AnnData,
    groupby: str,
    *,
    groups: Sequence[str] | None = None,
    include_rest: bool = False,
    key: str = _keys.DEFAULT_KEY,
    uns_key: str | None = None,
    cmap: str = "Reds",
    show: bool | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
    save: str | os.PathLike | bool | None = None,
) -> Figure | Axes | None:
    """Programs per group from :func:`scglassbox.tl.rank_programs`, as a heatmap.

    Rows are groups, columns programs (in the order given to the ranking); each square shows
    the group's mean ``view`` of the program (by default its share of the cells'
    explanation), written in the square.

    Parameters
    ----------
    {adata}
    groupby
        The ``groupby`` of the ranking.
    groups
        Only these groups (default: all ranked).
    include_rest
        Add a column for ``'rest'`` (the genes in no set).
    {key}
    uns_key
        Read this ``uns`` entry instead of ``key + '_programs_' + groupby``.
    cmap
        Colour map (a signed ``view`` uses ``'RdBu_r'`` centred on 0).
    {show_ax}

    Returns
    -------
    {plot_returns}

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata, quiet=True)
    >>> sets = gb.datasets.pbmc_gene_sets()
    >>> gb.tl.rank_programs(adata, "bulk_labels", sets)
    >>> gb.pl.rank_programs(adata, "bulk_labels")

    .. image:: /_static/plots/rank_programs.png
    """
    import matplotlib.pyplot as plt

    df = gp.rank_programs_df(adata, groupby, group=groups, key=key, uns_key=uns_key,
                          include_rest=include_rest)  # fmt: skip
    res = adata.uns[uns_key or _keys.programs_key(key, groupby)]
    order = [p for p in np.asarray(res["programs"]).astype(str) if p in set(df["program"])]
    table = df.pivot(index="group", columns="program", values="mean")
    table = table.loc[list(dict.fromkeys(df["group"])), order]
    checked = v.check_view(adata, str(res["params"]["view"]), key)
    signed = checked.signed
    if ax is None:  # room for the row labels, then ~0.6 inch per program
        label = 0.075 * max(len(str(g)) for g in table.index)
        w = label + 1.8 + 0.6 * table.shape[1]
        h = 0.075 * max(len(str(p)) for p in table.columns) + 0.6 + 0.35 * table.shape[0]
        fig, ax = plt.subplots(figsize=(w, max(h, 2.5)), layout="constrained")
    fig = ax.figure
    vals = table.to_numpy(dtype=float)
    m = float(np.nanmax(np.abs(vals))) if np.isfinite(vals).any() else 1.0
    kw = {"cmap": "RdBu_r", "vmin": -m, "vmax": m} if signed else {"cmap": cmap, "vmin": 0}
    im = ax.imshow(vals, aspect="auto", **kw)
    ax.set_xticks(range(table.shape[1]), table.columns, rotation=90)
    ax.set_yticks(range(table.shape[0]), table.index)
    for (i, j), val in np.ndenumerate(vals):
        if np.isfinite(val):
            dark = abs(val) > 0.6 * m
            ax.text(j, i, f"{val:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if dark else "black")  # fmt: skip
    ax.set_xlabel("program")
    ax.set_ylabel(groupby)
    fig.colorbar(im, ax=ax, label=f"mean {checked.label}")
    return finish(fig, ax, "gb_rank_programs", show=show, return_fig=return_fig, save=save)
