"""Seed ensembles: how stable are per-group gene importances across fits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy.stats import spearmanr

from .. import _keys
from .. import _logging as logg
from .._chunks import ENSEMBLE_CELLS, cells_per_chunk
from .._contributions import stream_contributions
from .._docs import doc_params
from .._views import View, parse_view
from ..get._access import MASK_DEFAULT, categorical
from ..get._aggregate import aggregate, membership
from ._glassbox_umap import prepare

if TYPE_CHECKING:
    from .._estimator import GlassBoxUMAP


def _group_means(
    est: GlassBoxUMAP, X: object, codes: np.ndarray, n_groups: int, view: View
) -> np.ndarray:
    """Per-group mean of a contribution view, streamed: ``(n_genes, n_groups)``."""
    chunks = (
        (membership(codes[rows], n_groups), view.reduce(c.astype(np.float32, copy=False)))
        for rows, _, c in stream_contributions(
            est.encoder_,
            X,
            est.input_map_,
            batch_size=cells_per_chunk(est.n_components, est.n_features_in_, ENSEMBLE_CELLS),
        )
    )
    return aggregate(chunks, n_groups).mean.T


def _stability(per_seed: np.ndarray) -> np.ndarray:
    """Mean pairwise Spearman correlation between seeds, per group. ``(seeds, genes, groups)``."""
    n_seeds, _, n_groups = per_seed.shape
    out = np.full(n_groups, np.nan)
    for g in range(n_groups):
        rho = [
            spearmanr(per_seed[i, :, g], per_seed[j, :, g]).statistic
            for i in range(n_seeds)
            for j in range(i + 1, n_seeds)
        ]
        out[g] = np.nanmean(rho) if rho else np.nan
    return out


@doc_params
def glassbox_ensemble(
    adata: AnnData,
    groupby: str,
    *,
    seeds: Sequence[int] = (0, 1, 2, 3),
    view: str = "normed_l2",
    key_added: str | None = None,
    copy: bool = False,
    neighbors_key: str | None = None,
    layer: str | None = None,
    use_raw: bool = False,
    mask_var: Any = MASK_DEFAULT,
    use_pca: bool | None = None,
    n_pcs: int = 50,
    use_rep: str | None = None,
    rep_loadings: str | None = "auto",
    batch_key: str | None = None,
    min_dist: float = 0.5,
    quiet: bool = False,
    **kwargs: Any,
) -> AnnData | None:
    """Fit several seeds and report per-group gene importances with their spread.

    The publication behind glass-box UMAP averaged 16 independent fits by hand; this does it
    in one call. Each fit uses the same graph and input as :func:`glassbox_umap`; only the
    seed changes. Per-cell contributions are streamed, never stored.

    Parameters
    ----------
    {adata}
    groupby
        Categorical ``obs`` column.
    seeds
        One fit per seed (at least 2).
    {view}
    key_added
        Default ``'glassbox_ensemble_' + groupby``.
    {copy}
    neighbors_key, layer, use_raw, mask_var, use_pca, n_pcs, min_dist
        As for :func:`glassbox_umap`.
    use_rep, rep_loadings, batch_key
        As for :func:`glassbox_umap` (with ``batch_key``, the batch features are ranked with
        the genes).
    {quiet}
    **kwargs
        Further :class:`~scglassbox.GlassBoxUMAP` parameters (``epochs``...).

    Returns
    -------
    ``adata`` copy if ``copy`` else ``None``; writes ``adata.uns[key_added]`` with ``mean``
    and ``sem`` (groups x genes: mean over seeds of each group's mean view, and its standard
    error over seeds), ``groups``, ``genes``, ``stability`` (DataFrame per group: mean
    pairwise Spearman correlation of the gene importances between seeds, 1 = identical
    rankings), ``per_seed`` (seeds x groups x genes) and ``params``. Read it with
    :func:`scglassbox.get.group_contributions`.

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_ensemble(adata, "bulk_labels", seeds=(0, 1, 2))
    >>> mean, sem = gb.get.group_contributions(adata, uns_key="glassbox_ensemble_bulk_labels")
    """
    out_key = _keys.check_key_added(key_added or _keys.ensemble_key(groupby))
    seeds = [int(s) for s in seeds]
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must hold at least 2 distinct integers, got {seeds}.")
    cats = categorical(adata, groupby)
    codes, n_groups = cats.codes.astype(np.int64), len(cats.categories)
    plan = prepare(
        adata, neighbors_key=neighbors_key, layer=layer, use_raw=use_raw, mask_var=mask_var,
        use_pca=use_pca, n_pcs=n_pcs, use_rep=use_rep, rep_loadings=rep_loadings,
        batch_key=batch_key, min_dist=min_dist, quiet=quiet, **kwargs,
    )  # fmt: skip
    est = plan.est
    checked = parse_view(view, est.n_components)  # before the first fit
    per_seed = []
    for i, seed in enumerate(seeds):
        logg.info(f"glassbox_ensemble: fit {i + 1}/{len(seeds)} (seed {seed})")
        est.random_state = seed
        est._fit(plan.X, graph=plan.graph, projection=plan.projection, inputs=plan.inputs)
        per_seed.append(_group_means(est, plan.rows, codes, n_groups, checked))
    stack = np.stack(per_seed)
    groups = np.asarray(cats.categories.astype(str))
    result = {
        "params": {"groupby": groupby, "view": view, "seeds": np.asarray(seeds)},
        "groups": groups,
        "genes": plan.var_names,
        "mean": stack.mean(0).T.astype(np.float32),
        "sem": (stack.std(0, ddof=1) / np.sqrt(len(seeds))).T.astype(np.float32),
        "stability": pd.DataFrame({"spearman": _stability(stack)}, index=pd.Index(groups)),
        "per_seed": stack.transpose(0, 2, 1).astype(np.float32),
    }
    if copy:
        adata = adata.copy()
    adata.uns[out_key] = result
    return adata if copy else None
