"""Training: UMAP's fuzzy cross-entropy on sampled edges, driven by Lightning.

Each step draws ``batch_size`` edges with probability proportional to their weight, encodes the
step's unique cells once, and takes ``negative_sample_rate`` negatives per edge among those
encoded cells. All sampling is index arithmetic on tensors on the training device; there is no
per-item Python dataset. One epoch is ``|E|`` edge draws, the same work as one epoch of the
reference package.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import warnings
from collections.abc import Iterator

import lightning.pytorch as lp
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.accelerators import CPUAccelerator
from torch import nn
from torch.utils.data import DataLoader

from . import _loss, _routed
from ._encoder import training_forward
from ._graph import EdgeList
from ._logging import progress_enabled
from ._optim import MuonAdam
from ._sampling import alias_table, draw
from ._threads import RowBlocks, torch_threads, worker_count

#: Added to squared distances before the log: keeps the repulsive gradient finite.
DIST_EPS = 1e-3


PRECISIONS = ("auto", "32", "bf16")
#: bfloat16 steps encode a multiple of this many rows (see ``UMAPModule._encode``). 512 made
#: 20k-cell fits about 7% slower (padding, and unequal row blocks) for the same peak memory.
BF16_ROWS = 128
#: Below this many cells a step is too small for bfloat16 to pay for its casts.
AUTO_BF16_MIN_CELLS = 1000
#: Muon's step size on an encoder's ``muon_parameters`` (the routed experts' hidden layers),
#: relative to ``lr``: 0.025 at the default 3e-3. 0.05 kept as much at umap-learn's min_dist
#: 0.1 but less at scanpy's 0.5 (docs/performance.md). 0 trains them with Adam, as before
#: stop 40.
MUON_LR_RATIO = 25 / 3
#: Newton-Schulz steps of Muon's orthogonalisation: ``None`` chooses by the matrices' width
#: (:func:`muon_ns_steps`); a number is used for every fit (benchmark variants set it).
MUON_NS_STEPS: int | None = None
#: Muon takes 4 Newton-Schulz steps while no matrix it steps is wider than this (the smaller
#: of its two sides), 5 beyond. At 20,000 cells (experts of 48) four kept as much local
#: structure or more, in 8% less CPU time; at 100,000 (experts of 64) less
#: (docs/performance.md). A matrix's smallest normalised singular values shrink with its
#: width, and the iteration needs more steps to lift them.
MUON_NS4_WIDTH = 48
#: Routed fits start with this share of the repulsion (a third: the 5 negatives per edge of
#: umap-learn where routed fits draw 15) and ramp it up linearly to the full strength at
#: :data:`REPULSION_RAMP_STEPS` of the steps. The layout forms under the weak repulsion and
#: the strong one then sharpens it: with 48 to 128 experts the full repulsion from the first
#: step tore cell types at some seeds; with the ramp, 96 experts tore one of twelve fits of
#: ``synthetic_20k`` and the noisy set, as often as the 32 experts of before
#: (docs/performance.md). Only the gradient ramps; the reported loss is the full objective.
REPULSION_START = 1 / 3
#: ... the share of the steps over which it ramps.
REPULSION_RAMP_STEPS = 0.5


def _cpu_has_fast_bf16() -> bool:
    # Private torch helpers; a torch without them gets the safe answer.
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:
        return False


def compute_dtype(
    precision: str, device: torch.device, encoder: nn.Module, n_cells: int
) -> torch.dtype | None:
    """The autocast dtype of the encoder's hidden layers during training (``None``: float32).

    ``"auto"`` picks bfloat16 only for the built-in encoders, from
    :data:`AUTO_BF16_MIN_CELLS` cells up, on CPUs with native bfloat16 instructions
    (AVX512-BF16 or AMX) and on CUDA GPUs that support it, where it was measured to train
    faster with kNN preservation within seed noise (CPU: ``benchmarks/precision.py``; one
    H200: 8.7 s against 16.5 s at 100,000 cells, kNN 0.136 against 0.135; figures in
    docs/performance.md); everywhere else float32. Weights,
    the embedding and the contributions are float32 whatever this says.
    """
    if precision == "bf16":
        return torch.bfloat16
    if not (
        precision == "auto"
        and getattr(encoder, "bf16_training", False)
        and n_cells >= AUTO_BF16_MIN_CELLS
    ):
        return None
    if device.type == "cpu":
        return torch.bfloat16 if _cpu_has_fast_bf16() else None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return None


def muon_ns_steps(matrices: list[torch.Tensor]) -> int:
    """Newton-Schulz steps for Muon on ``matrices``.

    :data:`MUON_NS_STEPS` if set; else 4 while every matrix is at most
    :data:`MUON_NS4_WIDTH` wide (its smaller side), 5 beyond.
    """
    if MUON_NS_STEPS is not None:
        return int(MUON_NS_STEPS)
    width = max((min(p.shape[-2:]) for p in matrices), default=0)
    return 4 if width <= MUON_NS4_WIDTH else 5


#: ``_unique`` sorts the ids rather than masking ``[0, n)`` when ``n`` exceeds this many times
#: their number: a mask costs about 9 ns per cell, a sort about 45 ns per id (one CPU thread).
SORT_ABOVE = 4


def _unique(ids: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.unique(ids, return_inverse=True)`` for ids in ``[0, n)``.

    Same output (sorted unique ids, inverse) either way. A mask over ``[0, n)`` is O(n +
    len(ids)): much cheaper than sorting a step's 2 x batch_size endpoints up to a few hundred
    thousand cells, but at a million cells it costs 8 ms a step against 2 ms for the sort.
    """
    if n > SORT_ABOVE * ids.shape[0]:
        return torch.unique(ids, sorted=True, return_inverse=True)
    seen = torch.zeros(n, dtype=torch.bool, device=ids.device)
    seen[ids] = True
    rank = torch.cumsum(seen, 0) - 1
    return seen.nonzero().squeeze(1), rank.index_select(0, ids)


class UMAPModule(lp.LightningModule):
    """LightningModule that trains ``encoder`` on UMAP's loss over an edge list."""

    def __init__(
        self,
        encoder: nn.Module,
        features: torch.Tensor,
        edges: EdgeList,
        *,
        a: float,
        b: float,
        negative_sample_rate: int,
        repulsion_strength: float,
        lr: float,
        batch_size: int,
        epochs: int,
        seed: int,
        precision: str = "32",
        sampler: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.features = features
        self.n_nodes = int(features.shape[0])
        self.heads = torch.from_numpy(edges.heads)
        self.tails = torch.from_numpy(edges.tails)
        prob, alias = alias_table(edges.weights) if sampler is None else sampler
        self.alias_prob, self.alias = torch.from_numpy(prob), torch.from_numpy(alias)
        self.a, self.b = a, b
        self.negative_sample_rate = negative_sample_rate
        self.repulsion_strength = repulsion_strength
        self.lr = lr
        self.batch_size = min(batch_size, edges.n_edges)
        self.epochs = epochs
        self.seed = seed
        self.precision = precision
        self.compute_dtype: torch.dtype | None = None
        self.steps_per_epoch = math.ceil(edges.n_edges / self.batch_size)
        # A buffer, so the history survives the trip back from spawned DDP workers.
        self.register_buffer("history", torch.full((epochs,), float("nan"), dtype=torch.float64))
        self._epoch_loss = None
        self._gen = None
        self._blocks: RowBlocks | None = None
        # A routed encoder's routes of every cell (fixed during the fit), looked up each step.
        self._plans: tuple[torch.Tensor, ...] | None = None
        # A routed encoder's seam pull at the first step (see _routed.SEAM_PULL).
        self._seam = 0.0
        # Whether the repulsion ramps up (REPULSION_START; routed encoders), and this step's.
        self._ramp = False
        self._repulsion = repulsion_strength
        # Whether the loss runs as the fused CPU pass of _loss (routed encoders on a CPU).
        self._fused_loss = False

    def on_fit_start(self) -> None:
        dev = self.device
        self.features = self.features.to(dev)
        self.heads, self.tails = self.heads.to(dev), self.tails.to(dev)
        # MPS has no float64; float32 thresholds shift each edge's odds by at most ~1e-7.
        prob_dtype = torch.float32 if dev.type == "mps" else torch.float64
        self.alias_prob, self.alias = self.alias_prob.to(dev, prob_dtype), self.alias.to(dev)
        self.compute_dtype = compute_dtype(self.precision, dev, self.encoder, self.n_nodes)
        if self.compute_dtype is not None and getattr(self.encoder, "bf16_training", False):
            # The first layer would cast every step's rows to this dtype anyway (same values).
            self.features = self.features.to(self.compute_dtype)
        table = getattr(self.encoder, "route_table", None)
        # From the features as training reads them, so the routes are those it would compute.
        self._plans = None if table is None else table(self.features)
        # Routed experts only: see _routed.SEAM_PULL and REPULSION_START.
        routed = hasattr(self.encoder, "seam_pull")
        self._seam = _routed.SEAM_PULL / self.batch_size if routed else 0.0
        self._ramp = routed and REPULSION_START < 1
        # The fused loss only where it was measured (routed CPU fits, whose many negatives
        # made the loss a seventh of a step); the single network's fits stay bit for bit as
        # the small-set fingerprints pin them.
        self._fused_loss = dev.type == "cpu" and self._plans is not None
        self._gen = torch.Generator(device=dev)
        self._gen.manual_seed(self.seed + 7919 * self.global_rank)

    def on_fit_end(self) -> None:
        self._plans = None  # the fit's own: not kept with the model
        if self._seam:
            self.encoder.seam_pull = 0.0

    def expected_rows(self) -> float:
        """Expected number of distinct cells encoded per step."""
        n = self.n_nodes
        return n * -math.expm1(-2.0 * self.batch_size / n)

    @contextlib.contextmanager
    def row_blocks(self, workers: int) -> Iterator[None]:
        """Split each step's encoding over ``workers`` threads while the block runs."""
        if workers < 2:
            yield
            return
        self._blocks = RowBlocks(workers, align=BF16_ROWS)
        try:
            yield
        finally:
            self._blocks.close()
            self._blocks = None

    def train_dataloader(self) -> DataLoader:
        # Only the step count matters; the sampling happens on the device in training_step.
        return DataLoader(range(self.steps_per_epoch), batch_size=None, shuffle=False)

    def configure_optimizers(self):
        # A constant step size. The linear decay this replaced never ran (it counted steps
        # with Lightning's num_training_batches, still inf here); a real decay, measured with
        # benchmarks/local_structure.py, lowered kNN preservation on wine (-0.012 over 7
        # seeds) while helping digits, so the behaviour every benchmark measured stays.
        muon = getattr(self.encoder, "muon_parameters", None)
        if muon is None or MUON_LR_RATIO <= 0:
            return torch.optim.Adam(self.encoder.parameters(), lr=self.lr)
        # Encoders that name weight matrices for Muon (the routed experts): it kept more local
        # structure per step, for new cells too (docs/performance.md).
        matrices = [p for p in muon() if p.requires_grad]
        ids = {id(p) for p in matrices}
        others = [p for p in self.encoder.parameters() if p.requires_grad and id(p) not in ids]
        fast = compute_dtype(self.precision, self.device, self.encoder, self.n_nodes)
        return MuonAdam(
            matrices,
            others,
            lr=self.lr,
            muon_lr=self.lr * MUON_LR_RATIO,
            ns_steps=muon_ns_steps(matrices),
            ns_dtype=torch.float32 if fast is None else fast,
            map_fn=map if self._blocks is None else self._blocks.map,
            # Each thread a share of every stack's experts: the stacks' sizes differ.
            chunks=1 if self._blocks is None else self._blocks.workers,
        )

    def _encode(self, x: torch.Tensor, plan: tuple[torch.Tensor, ...] | None = None):
        if self.compute_dtype is None:
            return training_forward(self.encoder, x, None, None, plan)
        # oneDNN keeps compiled bfloat16 kernels per input shape, and the number of distinct
        # cells changes every step: copies of the first row, cut off again by the encoder (so
        # they get no gradient), round it up to a multiple of BF16_ROWS, or the cache grows by
        # ~1 GB over a fit.
        n = x.shape[0]
        if n % BF16_ROWS:
            pad = -n % BF16_ROWS
            x = torch.cat([x, x[:1].expand(pad, -1)])
            if plan is not None:
                plan = tuple(torch.cat([t, t[:1].expand(pad, *t.shape[1:])]) for t in plan)
        return training_forward(self.encoder, x, self.compute_dtype, n, plan)

    def _encode_cells(self, nodes: torch.Tensor) -> torch.Tensor:
        """Encode the cells ``nodes`` with their routes looked up (routed encoders)."""
        plan = tuple(t.index_select(0, nodes) for t in self._plans)
        return self._encode(self.features.index_select(0, nodes), plan)

    def _tiled_step(self, nodes: torch.Tensor):
        """``(encode, tiles, combine, align)`` of a routed step for :meth:`RowBlocks.loss`.

        The step's rows are tiled once, by expert, and the threads split the tiles: each
        expert's last tile is padded once per step, not once per thread (at 20,000 cells,
        two threads' blocks of rows padded 71% more rows than they held). The tiles come in
        equal blocks of a multiple of ``TILE_GROUP`` (``align``).
        """
        from . import _kernels  # CPU training only (row blocks): numba

        plan = tuple(t.index_select(0, nodes) for t in self._plans)
        tiled = self.encoder.tile_rows(
            self.features.index_select(0, nodes),
            plan,
            group=_routed.TILE_GROUP * self._blocks.workers,
            tile=_routed.TRAIN_TILE,
            tiler=_kernels.tiles,
        )

        def encode(h: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
            return self.encoder.training_tiles(h, experts, self.compute_dtype)

        def combine(y: torch.Tensor) -> torch.Tensor:
            return self.encoder.untile(y, tiled, nodes.shape[0])

        return encode, (tiled.h, tiled.experts), combine, _routed.TILE_GROUP

    def _log_q_terms(self, dsq: torch.Tensor) -> torch.Tensor:
        # q = 1 / (1 + a d^(2b)) = sigmoid(-s) with s = log a + b log d^2.
        return math.log(self.a) + self.b * torch.log(dsq + DIST_EPS)

    def _loss(
        self, emb: torch.Tensor, inverse: torch.Tensor, neg: torch.Tensor, part: slice
    ) -> torch.Tensor:
        """The step's loss terms for the edges in ``part`` (divided by the step's edge count)."""
        n, k = self.batch_size, self.negative_sample_rate
        if self._fused_loss and _loss.supported(emb):
            heads, tails = inverse[:n][part], inverse[n:][part]
            negs = neg.view(n, k)[part]
            rep, full = self._repulsion, self.repulsion_strength
            return _loss.UMAPLossCPU.apply(
                emb, heads, tails, negs, self.a, self.b, rep, DIST_EPS, n, full
            )
        # index_select, not emb[idx]: its backward (index_add) is deterministic on CPU, while
        # advanced indexing accumulates duplicate rows in a thread-dependent order.
        head = emb.index_select(0, inverse[:n][part])
        tail = emb.index_select(0, inverse[n:][part])
        neg = emb.index_select(0, neg.view(n, k)[part].reshape(-1)).view(head.shape[0], k, -1)
        s_pos = self._log_q_terms((head - tail).pow(2).sum(1))
        s_neg = self._log_q_terms((head.unsqueeze(1) - neg).pow(2).sum(2))
        # -log q = softplus(s), -log(1 - q) = softplus(-s): stable cross-entropy terms.
        attraction, repulsion = F.softplus(s_pos).sum(), F.softplus(-s_neg).sum()
        loss = attraction + self._repulsion * repulsion
        if self._repulsion != self.repulsion_strength:  # the value of the full objective
            loss = loss + (self.repulsion_strength - self._repulsion) * repulsion.detach()
        return loss / n

    def _progress(self) -> float:
        """The share of this process's steps done before this step."""
        # The steps this process runs: under DDP each rank gets its share of the step
        # numbers, fewer than epochs * steps_per_epoch.
        per_epoch = self.trainer.num_training_batches
        if not math.isfinite(per_epoch):
            per_epoch = self.steps_per_epoch
        return self.global_step / max(1, self.epochs * int(per_epoch))

    def _seam_share(self) -> float:
        """The seam pull's share of its start at this step: 1 decaying linearly to 0."""
        span = _routed.SEAM_PULL_STEPS
        return max(0.0, 1.0 - self._progress() / span) if span > 0 else 0.0

    def _repulsion_share(self) -> float:
        """The repulsion's share of its full strength at this step (see REPULSION_START)."""
        span = REPULSION_RAMP_STEPS
        ramp = min(1.0, self._progress() / span) if span > 0 else 1.0
        return REPULSION_START + (1.0 - REPULSION_START) * ramp

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        n, gen, dev = self.batch_size, self._gen, self.device
        if self._seam:
            self.encoder.seam_pull = self._seam * self._seam_share()
        if self._ramp:
            self._repulsion = self.repulsion_strength * self._repulsion_share()
        idx = draw(self.alias_prob, self.alias, n, gen)
        ends = torch.cat([self.heads.index_select(0, idx), self.tails.index_select(0, idx)])
        nodes, inverse = _unique(ends, self.n_nodes)
        # Negatives: any of the step's cells, uniformly.
        neg = torch.randint(
            nodes.shape[0], (n * self.negative_sample_rate,), generator=gen, device=dev
        )
        if self._blocks is None:
            if self._plans is None:
                emb = self._encode(self.features.index_select(0, nodes))
            else:  # routes to look up
                emb = self._encode_cells(nodes)
            loss = self._loss(emb, inverse, neg, slice(None))
        else:
            params = [p for p in self.encoder.parameters() if p.requires_grad]
            if self._plans is None:  # the blocks split the step's rows
                encode, x = self._encode, self.features.index_select(0, nodes)
                combine = align = None
            else:  # routed: the blocks split the step's tiles
                encode, x, combine, align = self._tiled_step(nodes)
            loss = self._blocks.loss(
                encode,
                params,
                x,
                lambda emb, part: self._loss(emb, inverse, neg, part),
                n,
                combine,
                align,
            )
        detached = loss.detach()
        self._epoch_loss = detached if self._epoch_loss is None else self._epoch_loss + detached
        return loss

    def finish_epoch(self) -> torch.Tensor:
        """Write the epoch's mean loss into ``history`` (once) and return it.

        Lightning calls the callbacks' ``on_train_epoch_end`` before the module's, so the
        progress bar calls this too: whichever comes first writes the entry.
        """
        if self._epoch_loss is not None:
            steps = max(self.trainer.num_training_batches, 1)
            self.history[self.current_epoch] = self._epoch_loss.double() / steps
            self._epoch_loss = None
        return self.history[self.current_epoch]

    def on_train_epoch_end(self) -> None:
        self.finish_epoch()


class EpochProgress(lp.Callback):
    """One progress bar over epochs (Lightning's own restarts every epoch)."""

    def __init__(self) -> None:
        self._bar = None

    def on_train_start(self, trainer: lp.Trainer, module: UMAPModule) -> None:
        if trainer.is_global_zero:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=trainer.max_epochs, desc="glassbox-umap", unit="epoch")

    def on_train_epoch_end(self, trainer: lp.Trainer, module: UMAPModule) -> None:
        if self._bar is not None:
            loss = float(module.finish_epoch())
            self._bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            self._bar.update(1)

    def on_train_end(self, trainer: lp.Trainer, module: UMAPModule) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    on_exception = on_train_end  # type: ignore[assignment]


#: Lightning's start-up and end banners, meaningless to a scanpy user (``rank_zero_info``).
_BANNERS = re.compile(
    r"^(GPU|TPU|HPU|IPU) available|Tip: .*litlogger|`Trainer\.fit` stopped: `max_epochs"
)
#: Loggers that emit them (Lightning reassigns ``rank_zero_module.log``; both are covered).
_BANNER_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
)


class _DropBanners(logging.Filter):
    """Drops exactly Lightning's banner lines; every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _BANNERS.search(record.getMessage()) is None


@contextlib.contextmanager
def _quiet_lightning(quiet: bool) -> Iterator[None]:
    """During a fit: no Lightning banners, and with ``quiet`` none of its info lines.

    Warnings that concern the user stay visible; only three that do not apply to this
    training set-up are filtered, and only inside the block.
    """
    from lightning.pytorch.utilities import rank_zero as rz

    names = ("lightning.pytorch", "lightning.fabric", "lightning")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    banner_loggers = {logging.getLogger(n) for n in _BANNER_LOGGERS}
    banner_loggers.add(rz.rank_zero_module.log)
    drop = _DropBanners()
    with warnings.catch_warnings():
        # The dataloader only yields step numbers: worker processes would not help.
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        for lg in banner_loggers:
            lg.addFilter(drop)
        if quiet:
            for lg in loggers:
                lg.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for lg in banner_loggers:
                lg.removeFilter(drop)
            for lg, lvl in zip(loggers, levels, strict=True):
                lg.setLevel(lvl)


def train(
    module: UMAPModule,
    *,
    quiet: bool,
    accelerator: str,
    devices: int | str | list[int],
    trainer_kwargs: dict | None,
) -> np.ndarray:
    """Fit ``module`` with a Lightning trainer; return the per-epoch loss history.

    The progress bar shows unless ``quiet`` or ``sc.settings.verbosity`` is 0
    (:func:`scglassbox._logging.progress_enabled`).
    """
    progress = progress_enabled(quiet)
    kwargs = {
        "max_epochs": module.epochs,
        "accelerator": accelerator,
        "devices": devices,
        "logger": False,
        "enable_checkpointing": False,
        "enable_model_summary": False,
        "enable_progress_bar": False,
        "num_sanity_val_steps": 0,
        "callbacks": [EpochProgress()] if progress else [],
    }
    extra = dict(trainer_kwargs or {})
    kwargs["callbacks"] = kwargs["callbacks"] + list(extra.pop("callbacks", []))
    kwargs.update(extra)
    with _quiet_lightning(not progress):
        trainer = lp.Trainer(**kwargs)
        # One CPU process: one thread inside each operation, row blocks across threads.
        cpu = isinstance(trainer.accelerator, CPUAccelerator) and trainer.world_size == 1
        workers = worker_count(module.expected_rows(), torch.get_num_threads()) if cpu else 1
        try:
            with torch_threads(1 if cpu else None), module.row_blocks(workers):
                trainer.fit(module)
        except SystemExit as e:
            # Lightning turns Ctrl-C into sys.exit(1); a notebook user expects an interrupt.
            if trainer.interrupted:
                raise KeyboardInterrupt("training was interrupted; nothing was stored") from e
            raise
    if trainer.interrupted:
        raise KeyboardInterrupt("training was interrupted; nothing was stored")
    return module.history.cpu().numpy().copy()
