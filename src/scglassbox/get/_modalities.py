"""MuData: one map from several modalities, and each modality's exact share of it.

A fit on a :class:`mudata.MuData` reads every modality's features side by side (RNA genes,
proteins, peaks...), through an input map that is block-diagonal: each modality keeps its own
centring and projection (its PCA, or none). The encoder is exact, so each cell's coordinates
split into its features' contributions, and summing them per modality splits them exactly
into one term per modality. ``uns[key]['modalities']`` records the modalities in the model's
column order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from .. import _keys
from .._chunks import READ_CELLS
from .._docs import doc_params
from . import _access as acc


def is_mudata(data: object) -> bool:
    """Whether ``data`` is a :class:`mudata.MuData` (without importing mudata)."""
    return any(c.__name__ == "MuData" for c in type(data).__mro__)


@dataclass(frozen=True)
class Modalities:
    """The modalities a model reads: names, features per modality, and where each reads."""

    names: tuple[str, ...]
    n_features: tuple[int, ...]
    sources: tuple[str, ...]  # 'X' or 'layers/<name>' of each modality

    def slices(self) -> list[slice]:
        """Each modality's columns among the model's features."""
        ends = np.cumsum(self.n_features)
        return [slice(int(e - n), int(e)) for e, n in zip(ends, self.n_features, strict=True)]

    def to_dict(self) -> dict:
        return {
            "names": np.asarray(self.names, dtype=str),
            "n_features": np.asarray(self.n_features, dtype=np.int64),
            "sources": np.asarray(self.sources, dtype=str),
        }


def modalities_of(uns: dict) -> Modalities | None:
    """The modalities of a results block, or ``None`` for a fit on an AnnData."""
    block = uns.get("modalities")
    if not isinstance(block, dict):
        return None
    return Modalities(
        tuple(acc.str_array(block["names"]).tolist()),
        tuple(int(n) for n in np.asarray(block["n_features"])),
        tuple(acc.str_array(block["sources"]).tolist()),
    )


class Stacked:
    """Rows of several row sources side by side (one block per modality)."""

    def __init__(self, parts: Sequence[object], absent: np.ndarray | None = None) -> None:
        self.parts = list(parts)
        self.absent = np.empty(0, dtype=str) if absent is None else absent  # read as zeros
        self.shape = (self.parts[0].shape[0], sum(p.shape[1] for p in self.parts))
        self.dtype = np.dtype(np.float32)

    def rows(self, index: slice | np.ndarray) -> np.ndarray | sparse.csr_matrix:
        blocks = [p.rows(index) for p in self.parts]
        if any(sparse.issparse(b) for b in blocks):
            return sparse.hstack(blocks, format="csr", dtype=np.float32)
        return np.hstack([np.asarray(b, dtype=np.float32) for b in blocks])

    def __getitem__(self, index: slice) -> np.ndarray | sparse.csr_matrix:
        return self.rows(index)

    def materialise(self, chunk: int = READ_CELLS) -> np.ndarray | sparse.csr_matrix:
        return self.rows(slice(None))


def modality_rows(mdata: object, uns: dict, key: str, mods: Modalities, missing: str) -> Stacked:
    """Each modality's model features, read from ``mdata.mod`` by name, side by side."""
    if not is_mudata(mdata):
        raise TypeError(
            f"the model under {key!r} was fitted on a MuData (modalities {list(mods.names)}): "
            f"its cells are read from a MuData's modalities, not from a {type(mdata).__name__}."
        )
    names = acc.checked_names(uns, key)
    parts, absent = [], []
    for mod, cols, src in zip(mods.names, mods.slices(), mods.sources, strict=True):
        if mod not in mdata.mod:
            raise KeyError(
                f"the model reads modality {mod!r}, which this MuData lacks "
                f"(modalities: {list(mdata.mod)})."
            )
        view, gone = acc.aligned_expression(mdata.mod[mod], names[cols], src, missing=missing)
        parts.append(view)
        absent.append(gone)
    return Stacked(parts, np.concatenate(absent))


@doc_params
def modality_contributions(
    adata: object, key: str = _keys.DEFAULT_KEY, *, obs: object = None
) -> tuple[np.ndarray, list[str]]:
    """Each modality's exact share of every cell's coordinates.

    For a fit of :func:`~scglassbox.tl.glassbox_umap` on a :class:`mudata.MuData`: the sum
    of each modality's features' contributions. Over the modalities it sums to the embedding
    (within float32 rounding). Per-feature contributions stay available through
    :func:`contributions` (features named as in ``mdata.mod[...].var_names``).

    Parameters
    ----------
    adata
        The :class:`mudata.MuData` the model was fitted on, or one a model was mapped into
        (:func:`~scglassbox.tl.glassbox_transform`).
    {key}
    {obs}

    Returns
    -------
    ``(values, names)``: ``(n_cells, n_components, n_modalities)`` float32 and the modality
    names in that order.

    Examples
    --------
    >>> import numpy as np, scglassbox as gb
    >>> mdata = gb.datasets.synthetic_citeseq(600, seed=0)  # doctest: +SKIP
    >>> gb.tl.glassbox_umap(mdata, quiet=True)  # doctest: +SKIP
    >>> values, names = gb.get.modality_contributions(mdata)  # doctest: +SKIP
    >>> names  # doctest: +SKIP
    ['rna', 'prot']
    """
    from ._contributions import gather

    mods = modalities_of(acc.key_info(adata, key))
    if mods is None:
        raise ValueError(
            f"the fit under {key!r} was not made on a MuData: there are no modalities to "
            "split by. Run gb.tl.glassbox_umap(mdata) on a MuData."
        )
    n_dims = acc.embedding(adata, key).shape[1]
    slices = mods.slices()

    def per_modality(block: np.ndarray) -> np.ndarray:
        return np.stack([block[:, :, c].sum(-1, dtype=np.float64) for c in slices], axis=-1)

    out = gather(adata, key, (n_dims, len(slices)), per_modality, "modality contributions",
                 obs=obs)  # fmt: skip
    return out, list(mods.names)
