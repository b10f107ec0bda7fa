"""``batch_key``: the batch as exact input features, and the per-cell batch term.

A fit with ``batch_key`` reads, besides the genes, one indicator column per batch holding
``scale`` for the cell's own batch and 0 elsewhere (not centred: the baseline of these columns
is "no batch"). The encoder is bias-free and exact, so each cell's coordinates split into
its genes' contributions (relative to the mean cell) plus one batch term: what its own
batch's column adds. Those columns are the last features of the model, named
``'<batch_key>=<level>'``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from .. import _keys
from .._chunks import READ_CELLS
from .._docs import doc_params
from . import _access as acc

#: ``obs`` column of the per-cell batch share: ``<key>_batch_share``.
SHARE_SUFFIX = "_batch_share"


def share_key(key: str) -> str:
    """``obs`` key of the per-cell batch share of ``key``'s fit."""
    return f"{key}{SHARE_SUFFIX}"


@dataclass(frozen=True)
class BatchInfo:
    """How a model reads the batch: the ``obs`` column, its levels and the indicator value."""

    key: str
    levels: np.ndarray  # str, in the model's column order
    scale: float

    @property
    def names(self) -> np.ndarray:
        """The batch features' names, ``'<key>=<level>'``."""
        return np.asarray([f"{self.key}={lev}" for lev in self.levels])

    def columns(self, n_features: int) -> np.ndarray:
        """Positions of the batch features among a model's ``n_features`` (the last ones)."""
        return np.arange(n_features - len(self.levels), n_features)

    def to_dict(self) -> dict:
        return {"key": self.key, "levels": self.levels, "scale": float(self.scale)}


def batch_codes(adata: AnnData, batch_key: str, levels: np.ndarray | None = None) -> np.ndarray:
    """Each cell's batch as a position in ``levels`` (default: the column's own categories).

    Refuses a missing column, missing values and, with ``levels``, batches the model has not
    seen.
    """
    if not isinstance(batch_key, str) or batch_key not in adata.obs.columns:
        raise KeyError(
            f"batch_key={batch_key!r} is not a column of adata.obs "
            f"(columns: {list(adata.obs.columns)[:20]})."
        )
    values = adata.obs[batch_key]
    if values.isna().any():
        raise ValueError(
            f"adata.obs[{batch_key!r}] has {int(values.isna().sum())} missing values: "
            "every cell needs a batch."
        )
    values = values.astype(str).to_numpy()
    if levels is None:
        return pd.Categorical(values).codes.astype(np.int64)
    pos = pd.Index(acc.str_array(levels)).get_indexer(values)
    if (pos < 0).any():
        unseen = pd.unique(values[pos < 0])[:10].tolist()
        raise ValueError(
            f"adata.obs[{batch_key!r}] holds batches the model was not trained on: {unseen} "
            f"(it knows {acc.str_array(levels)[:20].tolist()}). A batch term is learned per "
            "batch, so cells of a new batch cannot be placed with it: map them with a model "
            "fitted without batch_key, or refit including that batch."
        )
    return pos.astype(np.int64)


def batch_info(adata: AnnData, key: str) -> BatchInfo | None:
    """The batch a fit read (``uns[key]['batch']``), or ``None`` when it read none."""
    return batch_of(acc.key_info(adata, key))


def batch_of(uns: dict) -> BatchInfo | None:
    """:func:`batch_info` of a results block ``uns``."""
    block = uns.get("batch")
    if not isinstance(block, dict):
        return None
    return BatchInfo(
        str(acc.scalar(block["key"])), acc.str_array(block["levels"]), float(block["scale"])
    )


def indicators(codes: np.ndarray, n_levels: int, scale: float) -> sparse.csr_matrix:
    """``(n, n_levels)`` CSR: ``scale`` in each row's own batch column, else 0."""
    n = len(codes)
    data = np.full(n, scale, dtype=np.float32)
    return sparse.csr_matrix((data, codes, np.arange(n + 1)), shape=(n, n_levels))


class WithBatch:
    """Rows of a feature source followed by the batch indicator columns, block by block.

    ``base`` is any row source (:class:`~scglassbox.get._access.ColumnView`,
    :class:`~scglassbox.get._access.Reconstruction`); its blocks keep their kind (CSR or
    dense).
    """

    def __init__(self, base: object, codes: np.ndarray, info: BatchInfo) -> None:
        self.base, self.codes, self.info = base, np.asarray(codes, np.int64), info
        self.shape = (base.shape[0], base.shape[1] + len(info.levels))
        self.dtype = np.dtype(np.float32)

    def rows(self, index: slice | np.ndarray) -> np.ndarray | sparse.csr_matrix:
        block = self.base.rows(index)
        ind = indicators(self.codes[index], len(self.info.levels), self.info.scale)
        if sparse.issparse(block):
            return sparse.hstack([block, ind], format="csr", dtype=np.float32)
        return np.hstack([np.asarray(block, dtype=np.float32), ind.toarray()])

    def __getitem__(self, index: slice) -> np.ndarray | sparse.csr_matrix:
        return self.rows(index)

    def materialise(self, chunk: int = READ_CELLS) -> np.ndarray | sparse.csr_matrix:
        return self.rows(slice(None))


def batch_columns(adata: AnnData, key: str) -> tuple[BatchInfo, np.ndarray]:
    """The fit's batch and the positions of its features among the model's, or an error."""
    info = batch_info(adata, key)
    if info is None:
        raise ValueError(
            f"the fit under {key!r} read no batch: run gb.tl.glassbox_umap(adata, "
            "batch_key=...) to split each cell's coordinates into genes and a batch term."
        )
    return info, info.columns(len(acc.gene_names(adata, key)))


@doc_params
def batch_contributions(
    adata: AnnData, key: str = _keys.DEFAULT_KEY, *, obs: object = None
) -> np.ndarray:
    """Each cell's batch term: what its batch adds to its coordinates.

    With ``batch_key`` in :func:`~scglassbox.tl.glassbox_umap`, a cell's coordinates are
    exactly the sum of its genes' contributions and this term.

    Parameters
    ----------
    {adata}
    {key}
    {obs}

    Returns
    -------
    ``(n_cells, n_components)`` float32.

    Examples
    --------
    >>> import numpy as np, scanpy as sc, scglassbox as gb
    >>> adata = gb.datasets.synthetic_scrna(600, 200, n_batches=2, seed=0)
    >>> sc.pp.log1p(adata)
    >>> sc.pp.pca(adata, n_comps=20)
    >>> sc.pp.neighbors(adata)
    >>> gb.tl.glassbox_umap(adata, batch_key="batch", quiet=True)
    >>> term = gb.get.batch_contributions(adata)
    >>> genes = gb.get.contributions(adata).sum(axis=-1) - term  # the genes' part
    >>> bool(np.allclose(genes + term, adata.obsm["X_glassbox_umap"], atol=1e-4))
    True
    """
    from ._contributions import gather

    _, cols = batch_columns(adata, key)
    names = acc.gene_names(adata, key)[cols].tolist()
    n_dims = acc.embedding(adata, key).shape[1]
    return gather(adata, key, (n_dims,), lambda block: block.sum(axis=-1), "batch terms",
                  obs=obs, genes=names)  # fmt: skip


def batch_share(contrib: np.ndarray, cols: Sequence[int] | np.ndarray) -> np.ndarray:
    """Per cell: the batch term's L2 norm over the sum of every feature's L2 norm.

    ``contrib`` is a ``(b, n_dims, n_features)`` block; the result lies in ``[0, 1]``.
    """
    norms = np.sqrt(np.einsum("bdf,bdf->bf", contrib, contrib, dtype=np.float64))
    term = contrib[:, :, cols].sum(axis=-1, dtype=np.float64)
    total = norms.sum(axis=1)
    share = np.linalg.norm(term, axis=1) / np.where(total > 0, total, 1.0)
    return share.astype(np.float32)
