"""What ``fit`` trains: the graph, the input map, the encoder and the schedule, as a module.

:func:`training_module` turns the estimator's parameters and ``X`` into the
:class:`~scglassbox._training.UMAPModule` that Lightning trains, in a fixed order of random draws
(graph, PCA, initial weights, ``init`` layout), so a fixed ``random_state`` gives the same fit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from scipy import sparse
from torch import nn

from . import _graph
from ._checks import check_encoder
from ._chunks import fit_input_cells
from ._contributions import InputMap, column_mean
from ._encoder import PLAIN_MLPS, RegisteredEncoder, build_encoder
from ._initial_layout import init_layout, regress_layout
from ._params import (
    AUTO_EPOCHS,
    AUTO_STEPS,
    GRAPH_OPTIONS,
    _is_default,
    auto_batch_size,
    auto_epochs,
    auto_hidden,
    auto_negatives,
    default_encoder,
    device_type,
    encoder_epochs,
)
from ._routed import RoutedMLP, auto_experts
from ._routed import auto_hidden as auto_routed_hidden
from ._sampling import alias_table
from ._training import UMAPModule
from ._warnings import warn

if TYPE_CHECKING:
    from ._estimator import GlassBoxUMAP


def training_module(
    est: GlassBoxUMAP,
    X: np.ndarray | sparse.spmatrix,
    graph: object,
    projection: tuple[np.ndarray, np.ndarray | None] | None,
    settings: dict[str, Any],
    inputs: np.ndarray | None = None,
) -> tuple[UMAPModule, sparse.csr_matrix, InputMap, np.ndarray]:
    """The module that ``est`` (a ``GlassBoxUMAP``) trains on ``X``, with what it was built from.

    Parameters
    ----------
    est
        The estimator whose parameters to use.
    X
        Validated input ``(n_samples, n_features)`` (images flattened to rows of pixels; their
        shape is ``est.input_shape_``).
    graph
        A precomputed fuzzy graph, or ``None`` to build the kNN graph here.
    projection
        A fixed input map ``(mean, components)``, or ``None`` to fit centring (and PCA).
    settings
        What :func:`scglassbox._params.check_params` returned for ``est``.
    inputs
        The encoder's inputs (``projection`` applied to ``X``, float32), when the caller
        has them already (``gb.tl.glassbox_umap``'s PCA check computes them); else computed.

    Returns
    -------
    The module, the fuzzy graph, the input map and the encoder's inputs (float32).
    """
    n, n_features = X.shape
    if est.pca_components is not None and est.pca_components > min(n, n_features):
        raise ValueError(
            f"pca_components ({est.pca_components}) exceeds min(n_samples, n_features) "
            f"= {min(n, n_features)}."
        )
    graph = _fit_graph(est, X, graph, settings)
    edges = _graph.edge_list(graph)
    # The alias table's construction needs the fit's largest transient buffers (about 1 GB at
    # 1M cells): build it now, before the encoder's inputs exist, and drop the weights.
    sampler = alias_table(edges.weights)
    edges = _graph.EdgeList(edges.heads, edges.tails, None)

    if projection is None:
        input_map = fit_input_map(X, est.pca_components, est.random_state)
    else:
        input_map = InputMap(*projection)
        if input_map.n_features != n_features or (
            input_map.components is not None and input_map.components.shape[0] != n_features
        ):
            raise ValueError(f"projection does not match X's {n_features} features.")
    device = device_type(settings["accelerator"])
    name = settings["encoder"]
    if isinstance(name, str) and name == "default":
        name = default_encoder(device, n, est.encoder_kwargs)
    encoder = _fit_encoder(est, name, input_map, n, n_features, device)
    if inputs is not None and inputs.shape == (n, input_map.n_inputs) and projection is not None:
        features = inputs
    else:
        features = input_map.inputs_of(X, fit_input_cells(est.batch_size))
    if not np.isfinite(features).all():
        raise ValueError("X's centred values overflow float32: rescale X.")
    seed = seed_of(est.random_state)
    if isinstance(encoder, RoutedMLP) and not isinstance(name, nn.Module):
        encoder.place(features, seed)
    if settings["a"] is None:
        a, b = _graph.find_ab_params(est.spread, est.min_dist)
    else:
        a, b = settings["a"], settings["b"]
    batch_size, epochs = _schedule(est, settings, name, n, edges.n_edges, device)
    if not (isinstance(est.init, str) and est.init == "random"):
        target = init_layout(
            X,
            graph,
            est.init,
            est.n_components,
            seed,
            metric=est.metric,
            metric_kwds=est.metric_kwds,
        )
        regress_layout(encoder, features, target, seed=seed, lr=settings["lr"])
    module = UMAPModule(
        encoder,
        torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)),
        edges,
        sampler=sampler,
        a=a,
        b=b,
        negative_sample_rate=(
            auto_negatives(name) if est.negative_sample_rate is None else est.negative_sample_rate
        ),
        repulsion_strength=est.repulsion_strength,
        lr=settings["lr"],
        batch_size=batch_size,
        epochs=epochs,
        seed=seed,
        precision=est.precision,
    )
    if est.num_batches:
        module.steps_per_epoch = int(est.num_batches)
    return module, graph, input_map, features


def _fit_graph(
    est: GlassBoxUMAP, X: np.ndarray | sparse.spmatrix, graph: object, settings: dict[str, Any]
) -> sparse.csr_matrix:
    """The graph to train on: built from ``X`` with the estimator's options, or checked."""
    n = X.shape[0]
    if graph is not None:
        if settings["custom_graph"]:
            changed = [k for k, v in GRAPH_OPTIONS.items() if not _is_default(getattr(est, k), v)]
            raise ValueError(
                f"{changed or ['metric_kwds']} "
                "steer the kNN graph that fit builds, but a graph was passed: set them "
                "where that graph is built (e.g. sc.pp.neighbors) instead."
            )
        return _graph.check_graph(graph, n)
    n_neighbors = est.n_neighbors
    if n_neighbors >= n:
        warn(
            f"n_neighbors ({n_neighbors}) is not smaller than the number of samples "
            f"({n}); using {n - 1}, as umap-learn does."
        )
        n_neighbors = n - 1
    # umap-learn's graph options (low_memory with them) only when one is set: see
    # _graph.fuzzy_graph.
    options = (
        {k: getattr(est, k) for k in (*GRAPH_OPTIONS, "low_memory")}
        if settings["custom_graph"]
        else {}
    )
    return _graph.fuzzy_graph(
        X, n_neighbors, metric=est.metric, random_state=est.random_state, **options
    )


def _fit_encoder(
    est: GlassBoxUMAP,
    name: str | nn.Module,
    input_map: InputMap,
    n: int,
    n_features: int,
    device: str,
) -> nn.Module:
    """The untrained encoder ``name`` (``"default"`` resolved), sized for the device and data.

    GPU widths for the one-network MLPs; experts by the number of cells for ``"mlp_routed"``.
    """
    encoder_kwargs = dict(est.encoder_kwargs or {})
    hidden = auto_hidden(device, n)
    # The GPU widths were measured for the MLPs only.
    if hidden is not None and _is_mlp(name):
        encoder_kwargs.setdefault("hidden", hidden)
    if isinstance(name, str) and name == "mlp_routed":
        if "experts" not in encoder_kwargs:
            # Widths for the automatic experts' share of the cells; given experts keep the
            # encoder's default widths unless hidden is given too.
            encoder_kwargs.setdefault("hidden", auto_routed_hidden(n))
        encoder_kwargs.setdefault("experts", auto_experts(n))
    # The encoder reads images in their own shape, or the input map's output when it projects.
    shape = tuple(getattr(est, "input_shape_", None) or (n_features,))
    if int(np.prod(shape)) != n_features:  # set by an earlier fit: X came another way
        shape = (n_features,)
    return make_encoder(
        name,
        input_map.n_inputs,
        est.n_components,
        encoder_kwargs,
        est.random_state,
        input_shape=shape if input_map.components is None else None,
    )


def _schedule(
    est: GlassBoxUMAP,
    settings: dict[str, Any],
    encoder: str | nn.Module,
    n: int,
    n_edges: int,
    device: str,
) -> tuple[int, int]:
    """Edges per step and epochs: as given, else chosen from the data and the device."""
    # With num_batches the user sets the steps per epoch: the epoch floor that large steps
    # make up for does not apply.
    batch_size = est.batch_size or auto_batch_size(n, None if est.num_batches else n_edges, device)
    if settings["epochs"] is not None:
        epochs = settings["epochs"]
    elif est.num_batches:
        lo, hi = AUTO_EPOCHS
        epochs = int(min(hi, max(lo, round(AUTO_STEPS / est.num_batches))))
    else:
        epochs = encoder_epochs(auto_epochs(n_edges, batch_size), encoder, n)
    return batch_size, epochs


def seed_of(random_state: int | None) -> int:
    """``random_state``, or a fresh seed from the OS when it is ``None``."""
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    return int(random_state)


def fit_input_map(
    X: np.ndarray | sparse.csr_matrix, pca_components: int | None, random_state: int | None
) -> InputMap:
    """Centring (the contributions' baseline) and, with ``pca_components``, PCA of ``X``."""
    mean = column_mean(X)
    if pca_components is None:
        return InputMap(mean)
    from sklearn.decomposition import PCA

    solver = "covariance_eigh" if X.shape[1] <= 4096 else "arpack"
    pca = PCA(pca_components, svd_solver=solver, random_state=random_state or 0)
    pca.fit(X)
    return InputMap(mean, pca.components_.T)


def _is_mlp(encoder: object) -> bool:
    """Whether ``encoder`` names a built-in one-network MLP."""
    return isinstance(encoder, str) and encoder in PLAIN_MLPS


def make_encoder(
    encoder: str | nn.Module,
    n_inputs: int,
    n_components: int,
    encoder_kwargs: dict[str, Any] | None,
    random_state: int | None,
    input_shape: tuple[int, ...] | None = None,
) -> nn.Module:
    """A named encoder seeded by ``random_state``, or the user's module once checked.

    ``input_shape``: one sample's shape as the encoder reads it (images for ``"conv"`` and
    registered encoders; ``None``: flat rows of ``n_inputs``). A registered encoder is the
    user's code, so it is checked like a module.
    """
    if not isinstance(encoder, nn.Module):
        # Forked: the initial weights depend on the seed alone and leave torch's global RNG as
        # the caller had it.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed_of(random_state))
            module = build_encoder(
                encoder, n_inputs, n_components, input_shape, **(encoder_kwargs or {})
            )
        if isinstance(module, RegisteredEncoder):
            check_encoder(module, n_inputs, n_components)
        return module
    check_encoder(encoder, n_inputs, n_components)
    return encoder
