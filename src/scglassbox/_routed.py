"""A routed encoder: each cell goes to one of K bias-free ``mlp_norm`` experts.

The route is the nearest of K centroids placed by k-means on the encoder's inputs when a fit
starts, then fixed. It is piecewise constant, so with every normalisation scale frozen a
cell's embedding is its expert's linear map applied to it, ``f(x) = A_k(x) x``, and the
contributions ``A_k(x) * x`` sum to the embedding exactly, as for ``"mlp_norm"``.

Hard routes tear the map where two experts meet (a cell type split across a boundary can land
in two islands), so cells near a boundary blend their two nearest experts:
``f(x) = w E_1(x) + (1 - w) E_2(x)`` with ``w = 1/2 + gap / (2 m)`` (clipped to [0, 1]),
``gap`` the difference of the two squared centroid distances and ``m`` the margin. ``w`` is 1/2 on a
boundary, so the map is continuous across it, and 1 from ``gap = m`` on, so only the cells
within the margin pay for a second expert. ``w`` is a constant of the route (no gradient), so
``f(x) = (w A_1(x) + (1 - w) A_2(x)) x`` is still an exact split. The margin is the
:data:`BLEND` quantile of the gaps of the cells the centroids are placed on.

A blend is continuous but can stretch: two experts that place the cells they share far apart
tear a cell type into two pieces joined by a trail of blended cells. Training therefore adds
the **seam pull** (:data:`SEAM_PULL`, :class:`_SeamPull`), the gradient of
``pull / 2 * |E_1(x) - E_2(x)|^2`` for each blended cell of a step, so the experts agree where
they meet. It acts on gradients only: the map and its contributions are those of the weights.

Why: a bias-free network's linear pieces are cones through the mean cell, so a tight cluster
far from it gets few of them, and the map cannot unfold its local structure; width buys pieces
at a cost per cell that grows with the weights. Routing gives each region of expression space
a network of its own while each cell still pays for one expert: K times the weights at about
the default's cost per cell (measured in docs/performance.md).

With ``gate=True`` (``encoder_kwargs``; off by default) each expert's units are **gated**: a
unit's value ``z`` (bias-free, ``z = W h``) is multiplied by ``g = a + (1 - a) s(gamma (z -
z_k + b_k))``, where ``s`` is a sigmoid (:func:`_squash`), ``z_k`` is the unit's value at
expert ``k``'s centroid, and ``a`` (the PReLU slope), ``gamma`` and ``b_k`` are learned. The
units bend near the expert's own cells, not on cones through the mean cell, and the value path
stays bias-free: with every gate value frozen (as the normalisation scales are during
attribution) the layer is ``diag(g) W h``, so ``f(x) = A(x) x`` and the split is exact as
before. ``z_k`` depends on the weights only, never on the cell.

The experts run together as one batched matrix product over tiles of :data:`TILE` rows that
belong to one expert each; the PReLU slopes are shared by the experts, so the default
encoder's fused activation applies to every tile at once.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from ._encoder import ScaleNorm, _PReLUScaleNorm, prelu

#: Rows' routes: ``(pair, near, w)``, see :meth:`RoutedMLP._plan`.
Plan = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class Tiled(NamedTuple):
    """A batch of rows in tiles of one expert each (:meth:`RoutedMLP.tile_rows`)."""

    #: The tiles' rows, ``(tiles, tile, n_in)``.
    h: torch.Tensor
    #: Each tile's expert.
    experts: torch.Tensor
    #: Where each row (blended rows' second copies after the rows) sits in the tiled order.
    position: torch.Tensor
    #: The rows that blend two experts (``None``: none do), and their first expert's weight.
    near: torch.Tensor | None
    w: torch.Tensor | None


#: A gated layer's ``(scale, offsets)``, offsets one row per tile; ``None`` without gates.
Gate = tuple[torch.Tensor, torch.Tensor] | None
#: A hidden layer's activation and normalisation: ``(z, slope, gate) -> h``.
Activation = Callable[[torch.Tensor, torch.Tensor, Gate], torch.Tensor]

#: Rows per tile of the batched expert products (the bfloat16 row padding of training).
TILE = 128
#: The number of tiles is padded to a multiple of this: fewer distinct shapes for oneDNN's
#: bfloat16 kernel cache, which keeps one kernel per shape.
TILE_GROUP = 4
#: Rows per tile in CPU training, where a step's tiles are split over threads (see
#: ``UMAPModule._tiled_step``): half a tile of padding per expert, against :data:`TILE`'s
#: smaller per-tile costs. 64 made a 20,000-cell step's encoder pass faster than 128 or 32.
TRAIN_TILE = 64
#: k-means places the centroids on at most this many cells (sampled with the fit's seed).
PLACE_CELLS = 50_000
#: Cells per expert when ``experts`` is not given (see :func:`auto_experts`): 96 experts at
#: 20,000 cells. With the repulsion ramp (``_training.REPULSION_START``) 96 experts of (48,
#: 48) kept more local structure than 32 of (64, 64) on every 20,000-cell set (synthetic_20k
#: 0.319-0.324 against 0.296-0.305 over six seeds; docs/performance.md); without the ramp,
#: 48 and more experts tore cell types at some seeds.
CELLS_PER_EXPERT = 208
#: At most this many experts when ``experts`` is not given: at 100,000 cells 128 experts kept
#: more neighbours than 64 for training and for new cells alike, within ``sc.tl.umap``'s
#: time (docs/performance.md).
MAX_AUTO_EXPERTS = 128
#: Each expert's hidden widths when ``hidden`` is not given. Many small experts kept more
#: local structure than fewer large ones for less time (32 x (64, 64): kNN 0.285 in 36 s;
#: 32 x (128, 128): 0.282 in 58 s; synthetic_20k, docs/performance.md).
ROUTED_HIDDEN = (64, 64)
#: ... and for experts of at most :data:`NARROW_CELLS` cells each when neither ``hidden`` nor
#: ``experts`` is given (:func:`auto_hidden`): 96 x (48, 48) at 20,000 cells cost about what 32
#: x (64, 64) cost in the encoder's pass (a (48, 48) expert makes two thirds of the products
#: per cell; Muon's updates grow with the experts, so the fit took 4-24% longer), where 96 x
#: (64, 64) took two fifths longer. At 100,000 cells (128 experts, about 780 cells each) (64,
#: 64) kept more than (48, 48) (0.121 against 0.118).
NARROW_HIDDEN = (48, 48)
#: ... see :data:`NARROW_HIDDEN`: between the 208 and 780 cells per expert measured.
NARROW_CELLS = 400
#: Share of cells (by their gap, on the placement sample) that blend two experts; 0 routes
#: every cell to one expert (hard routes, with seams).
BLEND = 0.2
#: The PReLU slopes' starting value (learned from there). ReLU-like units at the start kept
#: more local structure than ``nn.PReLU``'s 0.25 on every 20,000-cell set (+0.006 to +0.012;
#: 0.1: +0.002, 0.5 and negative slopes: less; docs/performance.md).
SLOPE_INIT = 0.0
#: The gates' starting sharpness ``gamma`` (learned from there): 2 kept the most local
#: structure of 1, 2, 3, 4 and 6 (two seeds each, within noise from 2 to 6; 1 less).
GATE_SCALE_INIT = 2.0
#: The gates' argument is clipped to +-this (see :func:`_squash`).
GATE_CLIP = 1e4
#: Training pulls the two expert outputs of each blended cell together (the gradient of
#: ``pull / 2 * |E_1(x) - E_2(x)|^2``, see :class:`_SeamPull`) with this strength per edge of
#: a step at the first step, decaying linearly to 0 at :data:`SEAM_PULL_STEPS` of the steps.
#: Without it, 15 negatives per edge tore cell types in two exactly along the experts'
#: boundaries (each piece one group of experts); pulls of 4 and 8 held at 20,000 cells but
#: not at 100,000 (5 epochs), 16 and 32 held everywhere measured (docs/performance.md).
SEAM_PULL = 32.0
#: ... the share of the steps over which it decays: free experts in the second half kept a
#: little more local structure than a constant pull.
SEAM_PULL_STEPS = 0.5


class _SeamPull(torch.autograd.Function):
    """The seam pull: the identity on ``(y1, y2)`` whose backward pass adds a penalty's gradient.

    The penalty is ``sum_i scale_i / 2 * |y1_i - y2_i|^2``: it pulls a blended cell's two
    expert outputs together without entering the reported loss.
    """

    @staticmethod
    def forward(ctx, y1: torch.Tensor, y2: torch.Tensor, scale: torch.Tensor):
        ctx.save_for_backward((y1 - y2) * scale)
        return y1.view_as(y1), y2.view_as(y2)

    @staticmethod
    def backward(ctx, g1: torch.Tensor, g2: torch.Tensor):
        (d,) = ctx.saved_tensors
        return g1 + d, g2 - d, None


def gate_value(
    z: torch.Tensor, slope: torch.Tensor, scale: torch.Tensor, offsets: torch.Tensor
) -> torch.Tensor:
    """The gates of ``z``'s units: :func:`_squash` of ``scale (z + offset)``.

    ``offsets`` has one row per tile of ``z``. In float32 (or ``z``'s dtype if wider),
    whatever ``z``'s dtype.
    """
    dtype = torch.promote_types(z.dtype, torch.float32)
    zt = z.to(dtype).view(offsets.shape[0], -1, z.shape[-1])
    return _squash(slope, scale * (zt + offsets[:, None])).view(z.shape)


def _squash(slope: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``slope + (1 - slope) s(u)`` with ``s(u) = (1 + u / sqrt(1 + u^2)) / 2``.

    ``s`` is a sigmoid (0 to 1, 1/2 at 0) made of a square root and a division, which the
    CPU kernels vectorise (an exponential does not). ``u`` is clipped to
    :data:`GATE_CLIP`, where ``s`` is 0 or 1 in float32, so ``u^2`` stays finite.
    """
    u = u.clamp(-GATE_CLIP, GATE_CLIP)
    return slope + (1 - slope) * 0.5 * (1 + u * torch.rsqrt(1 + u * u))


def _exact_dtype(device: torch.device) -> torch.dtype:
    """Where routes and blend weights are computed: float64, or float32 on MPS (no float64)."""
    return torch.float32 if device.type == "mps" else torch.float64


def auto_experts(n_cells: int) -> int:
    """Experts for ``n_cells`` cells: one per :data:`CELLS_PER_EXPERT`, 1 to 128."""
    return int(min(MAX_AUTO_EXPERTS, max(1, n_cells // CELLS_PER_EXPERT)))


def auto_hidden(n_cells: int) -> tuple[int, ...]:
    """Each automatic expert's widths for ``n_cells`` cells (:func:`auto_experts` experts).

    :data:`NARROW_HIDDEN` while the experts have at most :data:`NARROW_CELLS` cells each,
    :data:`ROUTED_HIDDEN` from there on (the number of experts stops growing at 128).
    """
    narrow = n_cells / auto_experts(n_cells) <= NARROW_CELLS
    return NARROW_HIDDEN if narrow else ROUTED_HIDDEN


#: Experts when nothing chooses them (fits choose from the data size): 20,000 cells' worth.
DEFAULT_EXPERTS = auto_experts(20_000)


class RoutedMLP(nn.Module):
    """K bias-free ``mlp_norm`` networks; each cell is encoded by its nearest centroid's.

    Parameters
    ----------
    n_in
        Number of input features.
    n_out
        Number of embedding dimensions.
    hidden
        Widths of each expert's hidden layers.
    experts
        Number of experts (and centroids).
    blend
        Share of cells that blend their two nearest experts, in [0, 1); 0: hard routes.
    margin
        The gap below which a cell blends (set by :meth:`place` from ``blend``; a stored
        model passes it back).
    gate
        Gated units that bend around each expert's centroid (see the module docstring)
        instead of PReLUs. Off by default: gates kept more local structure for the fitted
        cells of every 20,000-cell set (+0.01 to +0.02 at 60% of the epochs, +0.003 to +0.016
        at half, about the default's time), but not for new cells mapped with ``transform``
        (-0.001 to -0.005), and a gated fit of the same epochs takes a tenth to a fifth longer
        (docs/performance.md). A stored model says what it has; models saved before gates
        existed have none.
    """

    #: Trains in bfloat16 under ``precision='auto'``, like the default encoder.
    bf16_training = True

    def __init__(
        self,
        n_in: int,
        n_out: int,
        hidden: Sequence[int] = ROUTED_HIDDEN,
        experts: int = DEFAULT_EXPERTS,
        blend: float = BLEND,
        margin: float = 0.0,
        gate: bool = False,
    ) -> None:
        super().__init__()
        widths = (n_in, *hidden, n_out)
        # Each expert's layers start as nn.Linear's (bound 1/sqrt(fan_in)); slopes at SLOPE_INIT.
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(experts, a, b).uniform_(-(a**-0.5), a**-0.5))
            for a, b in itertools.pairwise(widths)
        )
        self.slopes = nn.ParameterList(nn.Parameter(torch.full((h,), SLOPE_INIT)) for h in hidden)
        if gate:  # no random draws: the weights above are those of an ungated encoder
            self.gate_scales = nn.ParameterList(
                nn.Parameter(torch.full((h,), GATE_SCALE_INIT)) for h in hidden
            )
            self.gate_offsets = nn.ParameterList(
                nn.Parameter(torch.zeros(experts, h)) for h in hidden
            )
        self.gate = bool(gate)
        self.register_buffer("centroids", torch.zeros(experts, n_in))
        self.n_in, self.n_out, self.hidden, self.experts = n_in, n_out, tuple(hidden), experts
        self.blend, self.margin = float(blend), float(margin)
        # Every hidden layer's normalisation (no weights): attribution_mode freezes its scale.
        self.norm = ScaleNorm()
        #: Training only (the trainer sets it each step, 0 outside a fit): the seam pull per
        #: blended cell, :data:`SEAM_PULL` (decayed) over the step's edge count.
        self.seam_pull = 0.0

    @property
    def architecture(self) -> dict:
        """Everything needed to rebuild this module (weights and centroids aside)."""
        return {
            "name": "mlp_routed",
            "n_in": self.n_in,
            "n_out": self.n_out,
            "hidden": list(self.hidden),
            "experts": self.experts,
            "blend": self.blend,
            "margin": self.margin,
            "gate": self.gate,
        }

    def muon_parameters(self) -> list[nn.Parameter]:
        """The hidden layers' weight stacks, which training steps with Muon (``_optim``)."""
        return list(self.weights[:-1])

    @property
    def blends(self) -> bool:
        """Whether cells within the margin go through their second-nearest expert too."""
        return self.margin > 0 and self.experts > 1

    def place(self, features: np.ndarray, seed: int) -> None:
        """Place the centroids by k-means on (a sample of) the encoder's inputs."""
        from sklearn.cluster import KMeans
        from sklearn.exceptions import ConvergenceWarning

        n = features.shape[0]
        if n < self.experts:
            raise ValueError(
                f"encoder_kwargs['experts'] ({self.experts}) exceeds the number of cells ({n})."
            )
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(n, PLACE_CELLS, replace=False)) if n > PLACE_CELLS else None
        sample = np.asarray(features if rows is None else features[rows], dtype=np.float32)
        with warnings.catch_warnings():
            # Fewer distinct cells than experts: some centroids coincide and their experts
            # never get a cell, which is harmless.
            warnings.simplefilter("ignore", ConvergenceWarning)
            km = KMeans(self.experts, n_init=1, random_state=seed % 2**32).fit(sample)
        centres = torch.from_numpy(km.cluster_centers_.astype(np.float32))
        self.centroids.copy_(centres.to(self.centroids.device))
        self.margin = 0.0
        if self.blend > 0 and self.experts > 1:
            with torch.no_grad():
                gaps = self._gaps(torch.from_numpy(sample).to(self.centroids.device))[0]
            self.margin = float(torch.quantile(gaps.float().cpu(), self.blend))

    def _distances(self, x: torch.Tensor) -> torch.Tensor:
        """Squared distances to the centroids, less each row's own squared norm.

        Rows are rounded to bfloat16 first and compared in float64 (float32 on MPS, which
        has no float64), so a cell takes the same route whether training stores inputs in
        bfloat16 or not, and in any batch.
        """
        dtype = _exact_dtype(x.device)
        xr = x.detach().to(torch.bfloat16).to(dtype)
        c = self.centroids.to(dtype)
        return (c * c).sum(1) - 2.0 * xr @ c.T

    def _gaps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each row's gap (second minus first squared distance) and two nearest centroids."""
        v, k = torch.topk(self._distances(x), 2, dim=1, largest=False)
        return v[:, 1] - v[:, 0], k

    def route(self, x: torch.Tensor) -> torch.Tensor:
        """Each row's expert: its nearest centroid (the one with the larger blend weight)."""
        return self._distances(x).argmin(1)

    def _tiles(
        self, x: torch.Tensor, route: torch.Tensor, group: int = TILE_GROUP, tile: int = TILE
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(rows, tile_experts, position)``: the tiled row order and its inverse.

        Each expert's rows fill whole tiles of ``tile`` rows (the last one padded with copies
        of its last row); ``position[i]`` is where row ``i`` of ``x`` sits in the tiled order.
        The number of tiles is padded to a multiple of ``group``.
        """
        dev = x.device
        counts = torch.bincount(route, minlength=self.experts)
        padded = (counts + tile - 1) // tile * tile
        start = torch.cumsum(counts, 0) - counts
        tiled_start = torch.cumsum(padded, 0) - padded
        order = torch.argsort(route, stable=True)
        expert = torch.repeat_interleave(torch.arange(self.experts, device=dev), padded)
        # Extra tiles (expert 0's first row) keep the number of tiles a multiple of group.
        extra = -(expert.shape[0] // tile) % group * tile
        local = torch.arange(expert.shape[0], device=dev) - tiled_start[expert]
        rows = order[start[expert] + torch.minimum(local, counts[expert] - 1)]
        if extra:
            rows = torch.cat([rows, order[:1].expand(extra)])
            expert = torch.cat([expert, expert.new_zeros(extra)])
        sorted_route = route[order]
        position = torch.empty_like(order)
        position[order] = (
            tiled_start[sorted_route] + torch.arange(len(order), device=dev) - start[sorted_route]
        )
        return rows, expert[::tile], position

    def centred_offsets(self) -> list[torch.Tensor]:
        """Each hidden layer's gate offsets ``b_k - z_k``, ``(experts, width)``.

        ``z_k`` is the layer's value at expert ``k``'s centroid, taken through the expert's
        own layers (the centroid's gates have argument ``b_k``). Depends on the weights only,
        so it is computed once per pass, outside autocast.
        """
        w0 = self.weights[0]
        with torch.autocast(w0.device.type, enabled=False):
            c = self.centroids.to(w0.dtype)[:, None, :]
            out = []
            for w, slope, scale, offset in zip(
                self.weights[:-1], self.slopes, self.gate_scales, self.gate_offsets, strict=True
            ):
                zc = torch.bmm(c, w)[:, 0]
                out.append(offset - zc)
                c = self.norm(zc * _squash(slope, scale * offset))[:, None]
        return out

    def _layers(
        self,
        h: torch.Tensor,
        experts: torch.Tensor,
        activation: Activation,
        compute_dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """Tiles ``h`` ``(tiles, tile, n_in)`` through their experts ``experts`` (one per tile).

        Hidden layers under autocast to ``compute_dtype`` (if any), the output layer in
        float32, as the default encoder's (see ``training_forward`` there). Returns the
        outputs ``(tiles * tile, n_out)`` in the tiled order.
        """
        offsets = self.centred_offsets() if self.gate else None
        with torch.autocast(h.device.type, dtype=compute_dtype, enabled=compute_dtype is not None):
            for i, (w, slope) in enumerate(zip(self.weights[:-1], self.slopes, strict=True)):
                z = torch.bmm(h, w.index_select(0, experts).to(h.dtype))
                gate = None
                if offsets is not None:
                    gate = (self.gate_scales[i], offsets[i].index_select(0, experts))
                h = activation(z.view(-1, z.shape[-1]), slope, gate).view(z.shape)
        w = self.weights[-1].index_select(0, experts)
        # As (w^T h^T)^T: the same products, bit for bit, but with a 2-column output the
        # batched product ran 2.5x faster forward and backward this way round (CPU, float32).
        return torch.bmm(w.mT, h.to(w.dtype).mT).mT.reshape(-1, self.n_out)

    def _modules_activation(self, z: torch.Tensor, slope: torch.Tensor, gate: Gate) -> torch.Tensor:
        if gate is None:
            return self.norm(prelu(z, slope))
        g = gate_value(z, slope, *gate)
        # Frozen during attribution, like the normalisation scale: the split stays exact.
        return self.norm(z * (g.detach() if self.norm.frozen_scale else g))

    def _weights(self, x: torch.Tensor, pair: torch.Tensor) -> torch.Tensor:
        """The first expert's blend weight for rows that blend ``pair``'s two experts.

        Routes are taken on bfloat16-rounded rows (see :meth:`_distances`), but the weights
        come from the rows as given: rounded, they would step with the rounding and the map
        would jump by a little at every step. They are constants of the route (no gradient),
        so the split stays exact.
        """
        dtype = _exact_dtype(x.device)
        xd, c = x.detach().to(dtype), self.centroids.to(dtype)
        d1 = (xd - c.index_select(0, pair[:, 0])).pow(2).sum(1)
        d2 = (xd - c.index_select(0, pair[:, 1])).pow(2).sum(1)
        w = (0.5 + (d2 - d1) / (2.0 * self.margin)).clamp(0.0, 1.0)
        return w.to(torch.float32)[:, None]

    def _plan(self, x: torch.Tensor) -> Plan:
        """Each row's two nearest experts, whether it blends them, and the first one's weight.

        ``(pair, near, w)``: ``pair[:, 0]`` is the row's expert; with a margin, rows with
        ``near`` also go through ``pair[:, 1]`` and weigh the first by ``w`` (1 elsewhere).
        """
        n, dev = x.shape[0], x.device
        w = torch.ones(n, dtype=torch.float32, device=dev)
        if self.blends:
            gap, pair = self._gaps(x)
            near = gap < self.margin
            idx = torch.nonzero(near).squeeze(1)
            w[idx] = self._weights(x.index_select(0, idx), pair.index_select(0, idx))[:, 0]
            return pair, near, w
        first = self.route(x)
        return torch.stack([first, first], 1), torch.zeros(n, dtype=torch.bool, device=dev), w

    @torch.no_grad()
    def route_table(self, x: torch.Tensor, chunk: int = 65_536) -> Plan:
        """:meth:`_plan` of every row, in chunks: looked up by cell during training.

        The inputs and the centroids are fixed during a fit, so training takes each step's
        routes from this table instead of recomputing them (about a seventh of a step).
        """
        parts = [self._plan(part) for part in x.split(chunk)]
        return tuple(torch.cat(t) for t in zip(*parts, strict=True))  # type: ignore[return-value]

    def tile_rows(
        self,
        x: torch.Tensor,
        plan: Plan | None = None,
        group: int = TILE_GROUP,
        tile: int = TILE,
        tiler: Callable | None = None,
    ) -> Tiled:
        """The rows ``x`` in tiles of one expert each, and how to put their outputs back.

        Every row goes to its expert, and the rows within the margin to a second one too.
        ``plan``: the rows' :meth:`_plan`, when the caller has it (from :meth:`route_table`).
        ``group``: the number of tiles is a multiple of it; ``tile``: rows per tile.
        ``tiler(route, experts, tile, group)``: instead of :meth:`_tiles` (same result).
        """
        pair, is_near, w_all = self._plan(x) if plan is None else plan
        near = w = None
        if self.blends:
            near = torch.nonzero(is_near).squeeze(1)
            route = torch.cat([pair[:, 0], pair.index_select(0, near)[:, 1]])
            w = w_all.index_select(0, near)[:, None]
            x = torch.cat([x, x.index_select(0, near)])
        else:
            route = pair[:, 0]
        if tiler is None:
            rows, experts, position = self._tiles(x, route, group, tile)
        else:
            rows, experts, position = tiler(route, self.experts, tile, group)
        h = x.index_select(0, rows).view(experts.shape[0], tile, -1)
        return Tiled(h, experts, position, near, w)

    def untile(self, y: torch.Tensor, tiled: Tiled, pull_rows: int | None = None) -> torch.Tensor:
        """The rows' outputs from their tiles' ``y`` (:meth:`_layers`), blended where near.

        ``pull_rows``: in training, the first ``pull_rows`` rows' blended outputs get the seam
        pull (see :data:`SEAM_PULL`); the rest are padding.
        """
        y = y.index_select(0, tiled.position)
        near, w = tiled.near, tiled.w
        if near is None:
            return y
        n = y.shape[0] - near.shape[0]
        y1, y2 = y.index_select(0, near), y[n:]
        if pull_rows is not None and self.seam_pull > 0:
            scale = (near < pull_rows).to(y.dtype)[:, None] * self.seam_pull
            y1, y2 = _SeamPull.apply(y1, y2, scale)
        first = y[:n].index_copy(0, near, w * y1)
        return first.index_add(0, near, (1.0 - w) * y2)

    def _encode(
        self,
        x: torch.Tensor,
        activation: Activation,
        compute_dtype: torch.dtype | None = None,
        plan: Plan | None = None,
        pull_rows: int | None = None,
    ) -> torch.Tensor:
        """Every row through its expert, and the rows within the margin through a second.

        ``plan`` and ``pull_rows``: see :meth:`tile_rows` and :meth:`untile`.
        """
        tiled = self.tile_rows(x, plan)
        y = self._layers(tiled.h, tiled.experts, activation, compute_dtype)
        return self.untile(y, tiled, pull_rows)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._encode(x, self._modules_activation)

    def _fused(self, z: torch.Tensor, slope: torch.Tensor, gate: Gate) -> torch.Tensor:
        """The training activation: the numba kernels where they apply (about 3x faster)."""
        # Here, not at module level: only CPU training needs numba (models load, map and
        # attribute without importing it).
        from . import _kernels

        if gate is not None:
            if _kernels.supported(z):
                return _kernels.GateScaleNormCPU.apply(z, slope, *gate, self.norm.eps)
            return self._modules_activation(z, slope, gate)  # nothing frozen in training
        if _kernels.supported(z):
            return _kernels.PReLUScaleNormCPU.apply(z, slope, self.norm.eps)
        return _PReLUScaleNorm.apply(z, slope, True, self.norm.eps)

    def training_forward(
        self,
        x: torch.Tensor,
        compute_dtype: torch.dtype | None = None,
        rows: int | None = None,
        plan: Plan | None = None,
    ) -> torch.Tensor:
        """The forward pass training uses: the fused activation, maybe under autocast.

        ``plan``: the rows' entries of :meth:`route_table`, if the caller looked them up.
        """
        y = self._encode(x, self._fused, compute_dtype, plan, x.shape[0] if rows is None else rows)
        return y if rows is None else y[:rows]

    def training_tiles(
        self, h: torch.Tensor, experts: torch.Tensor, compute_dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """:meth:`_layers` of some of a step's tiles (:meth:`tile_rows`), as training runs them.

        Training splits a step's tiles, not its rows, over threads: split by rows, each
        thread would pad every expert's last tile, and two threads pad about twice as many
        rows as one.
        """
        return self._layers(h, experts, self._fused, compute_dtype)
