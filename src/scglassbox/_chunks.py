"""How many cells are processed at once outside training: every chunk size, in one place.

Two kinds of size steer the package. **Training** is sized in *edges*: the estimator's
``batch_size`` is the number of graph edges per optimiser step (``None``:
:func:`scglassbox._params.auto_batch_size`), and the ``init`` layout's regression draws
:data:`scglassbox._initial_layout.INIT_BATCH` cells per Adam step. Those sizes change the
random draws, and so the fit; they live with training and are not defined here.

Everything else walks over cells in **chunks**, and every chunk size comes from this module:

- :data:`CHUNK_BYTES`, the one memory budget: a chunk's float64 ``(cells, dims, features)``
  contributions buffer (the back-projection through a PCA is taken in float64 to stay exact).
  :func:`cells_per_chunk` turns it into cells for a given number of dims and features, under
  a cap.
- :data:`INFERENCE_CELLS`, the default cap: cells per encoder call of
  :meth:`~scglassbox.GlassBoxUMAP.transform`, ``compute_contributions`` and
  ``compute_jacobian`` when neither their ``batch_size`` nor the estimator's is set
  (:func:`inference_cells`; the estimator's ``inference_batch_size``).
- The few places that keep a size of their own, each named below: the AnnData access layer
  (:data:`ACCESS_CELLS`), the fit's pass over its encoder inputs
  (:data:`FIT_INPUT_MIN_CELLS`), seed ensembles (:data:`ENSEMBLE_CELLS`) and reads of
  matrices that are not in memory (:data:`READ_CELLS`).

Chunking changes memory and speed, and otherwise only the rounding of sums taken chunk by
chunk (group means, column means): the values are those that fixed-seed results were recorded
with (``benchmarks/fingerprint.py``), so changing one may change results in their last bits.
This module imports nothing, so every layer (core, ``tl``, ``get``, ``pl``) can use it.
"""

from __future__ import annotations

#: The memory budget of one chunk: its float64 ``(cells, dims, features)`` contributions
#: buffer. It bounds a chunk's memory whatever the number of features: 4,096 cells x 2 dims x
#: 2,000 genes, 409 cells with 20,000 genes; a few such buffers (the float32 result, its
#: absolute values, the dense rows) live at once.
CHUNK_BYTES = 64 * 2**20

#: The default cap: cells per chunk of the estimator's inference (``transform``,
#: ``compute_contributions``, ``compute_jacobian``, the embedding of the training data) when
#: neither the call's ``batch_size`` nor the estimator's is set. ``compute_contributions`` and
#: ``compute_jacobian`` also keep a default batch within :data:`CHUNK_BYTES`.
INFERENCE_CELLS = 10_000

#: Cap for the access layer (``gb.get``, and ``gb.pl`` through it): cells per chunk when an
#: AnnData's contributions are read from the stored cache or recomputed from the model, and
#: when the explorer reads expression values; :func:`cells_per_chunk` lowers it for many genes.
ACCESS_CELLS = 8_192

#: Floor of the fit's pass that computes every cell's encoder input: ``batch_size`` is edges
#: per training step, so a small one would otherwise cut that pass into tiny chunks.
FIT_INPUT_MIN_CELLS = 4_096

#: Cap for ``gb.tl.glassbox_ensemble``'s per-seed contributions (lowered by
#: :func:`cells_per_chunk` for many genes, as everywhere).
ENSEMBLE_CELLS = 4_096

#: Rows read at once from a matrix that is not in memory (a backed ``.h5ad``, a column view):
#: its column means and its materialisation.
READ_CELLS = 65_536


def cells_per_chunk(n_dims: int, n_features: int, cap: int | None = None) -> int:
    """Cells per chunk so that a chunk's float64 contributions fit :data:`CHUNK_BYTES`.

    Parameters
    ----------
    n_dims, n_features
        Embedding dimensions and input features of one cell's contributions.
    cap
        Most cells per chunk (:data:`INFERENCE_CELLS`, :data:`ACCESS_CELLS`, the estimator's
        ``inference_batch_size``...); ``None``: the budget alone (the dask chunks of
        ``contributions='lazy'``).

    Returns
    -------
    At least 1.
    """
    rows = max(1, CHUNK_BYTES // (8 * max(n_dims, 1) * max(n_features, 1)))
    return int(rows if cap is None else max(1, min(rows, cap)))


def inference_cells(batch_size: int | None) -> int:
    """Cells per chunk of an estimator's inference: its ``batch_size``, else the default cap.

    ``batch_size`` is the estimator's parameter, edges per training step; as in the reference
    package it also sets the cells per inference chunk, and :data:`INFERENCE_CELLS` stands in
    when it is ``None``.
    """
    return batch_size or INFERENCE_CELLS


def fit_input_cells(batch_size: int | None) -> int:
    """Cells per chunk of the fit's encoder inputs: at least :data:`FIT_INPUT_MIN_CELLS`."""
    return max(inference_cells(batch_size), FIT_INPUT_MIN_CELLS)
