"""Where results live in AnnData: one place that builds every key, and the defaults sentinel.

Modelled on scanpy's ``_keys`` and on the ``Default`` sentinel of ``scanpy.pp.pca``: a default
is recognised by type, never by comparing strings by identity.
"""

from __future__ import annotations

DEFAULT_KEY = "glassbox_umap"
DEFAULT_NEIGHBORS_KEY = "neighbors"
#: How per-cell contributions are stored by ``gb.tl.glassbox_umap(contributions=...)``.
STORAGES = ("auto", "full", "float16", "lazy", "none")

#: ``uns``/``obsm`` keys written by scanpy's own tools. A ``key_added`` among them would replace
#: another tool's results (``key_added='pca'`` would overwrite ``obsm['X_pca']``).
RESERVED_KEYS = frozenset({
    "pca", "neighbors", "umap", "tsne", "diffmap", "draw_graph_fa", "draw_graph_fr", "paga",
    "leiden", "louvain", "rank_genes_groups", "dendrogram", "hvg", "log1p", "spatial", "raw",
})  # fmt: skip


class Default:
    """A parameter default that documents itself and is recognised by ``isinstance``."""

    def __init__(self, description: str) -> None:
        self.description = description

    def __repr__(self) -> str:
        return f"Default({self.description})"


def result_key(key_added: str | None) -> str:
    """The key results go under: ``key_added`` or ``'glassbox_umap'``."""
    return DEFAULT_KEY if key_added is None else key_added


def embedding_key(key: str) -> str:
    """``obsm`` key of the embedding (what ``sc.pl.embedding(basis=key)`` reads)."""
    return f"X_{key}"


def contributions_key(key: str) -> str:
    """``obsm`` key of the per-cell contributions and ``varm`` key of the gene summary."""
    return f"{key}_contributions"


def rank_key(key: str, groupby: str, reference: str | None = None) -> str:
    """``uns`` key of :func:`~scglassbox.tl.rank_contributions`' result.

    A ranking against a ``reference`` has a key of its own (``..._vs_<reference>``), so that
    it does not replace the all-groups ranking; ``'/'`` in the reference's name becomes
    ``'_'`` (h5ad and zarr read it as a path).
    """
    base = f"{key}_rank_{groupby}"
    return base if reference is None else f"{base}_vs_{str(reference).replace('/', '_')}"


def programs_key(key: str, groupby: str) -> str:
    """``uns`` key of :func:`~scglassbox.tl.rank_programs`' result."""
    return f"{key}_programs_{groupby}"


def ensemble_key(groupby: str) -> str:
    """``uns`` key of :func:`~scglassbox.tl.glassbox_ensemble`'s result."""
    return f"glassbox_ensemble_{groupby}"


def neighbors_key(key: str | None) -> str:
    """``uns`` key of scanpy's neighbour graph."""
    return DEFAULT_NEIGHBORS_KEY if key is None else key


def check_key_added(key_added: object, *, name: str = "key_added") -> str:
    """Validate a user's ``key_added`` before any work and return the key to use.

    h5ad and zarr treat ``'/'`` as a path separator, so such a key makes the file unreadable.
    """
    if key_added is None:
        return DEFAULT_KEY
    if not isinstance(key_added, str) or not key_added:
        raise ValueError(f"{name} must be a non-empty string, got {key_added!r}.")
    if "/" in key_added:
        raise ValueError(
            f"{name}={key_added!r} contains '/', which .h5ad and .zarr files read as a path: "
            "the file could not be read back."
        )
    if key_added in RESERVED_KEYS:
        raise ValueError(
            f"{name}={key_added!r} is used by scanpy's own tools; writing there would replace "
            "their results. Choose another key."
        )
    return key_added
