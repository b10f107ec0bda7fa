#!/usr/bin/env python
"""A/B of training and encoder variants for local structure (kNN preservation@15).

Every variant fits the same prepared sets of ``benchmarks/run.py`` (same cache, same scanpy
graphs) with the same seeds, next to umap-learn and ``sc.tl.umap``, and prints one table of
fit time and kNN preservation per set::

    python benchmarks/local_structure.py --datasets synthetic_20k --variants default gated16
    python benchmarks/local_structure.py --list          # what each variant changes

Variants that need code the package does not ship (prototype encoders, other schedules) are
defined here; a variant becomes a default only through the package itself. Each fit runs in a
fresh process, so timings are comparable; quote ratios from one run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402  (benchmarks/run.py: datasets, cache and metrics)

# --------------------------------------------------------------------------- prototypes


def gated_encoder(n_in: int, n_out: int, experts: int, hidden: tuple[int, ...], softmax: bool):
    """``f(x) = sum_k g_k(x) W_k x``: linear maps mixed by gates from a biased MLP.

    Exact additive split: with the gates frozen (attribution), ``f`` is the linear map
    ``A(x) = sum_k g_k(x) W_k`` applied to ``x``, so ``A(x) * x`` sums to ``f(x)``.
    """
    import torch
    from torch import nn

    class GatedLinear(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            width = n_in
            for h in hidden:
                layers += [nn.Linear(width, h), nn.GELU()]
                width = h
            layers.append(nn.Linear(width, experts))
            self.gate = nn.Sequential(*layers)
            self.maps = nn.Linear(n_in, experts * n_out, bias=False)
            nn.init.normal_(self.maps.weight, std=(1.0 / n_in) ** 0.5)
            self.frozen_scale = False  # attribution_mode sets it: gates become constants

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            g = self.gate(x)
            g = torch.softmax(g, dim=-1) if softmax else g / experts**0.5
            if self.frozen_scale:
                g = g.detach()
            y = self.maps(x).view(x.shape[0], experts, n_out)
            return (g.unsqueeze(-1) * y).sum(1)

    return GatedLinear()


def _routed(
    experts: int, hidden: tuple[int, ...], factor: float, blend: float = 0.0, **proto: Any
) -> tuple:
    """A variant of ``encoder="mlp_routed"`` with every setting given: experts, each one's
    widths, the epochs as a share of the single network's automatic ones and the share of
    cells that blend two experts (so the variant does not move when the encoder's automatic
    settings do)."""
    desc = f"encoder mlp_routed, {experts} x {hidden}, {factor:g}x the epochs"
    desc += f", {blend:g} of the cells blend" if blend else ", hard routes"
    if "tile" in proto:
        desc += f", {proto['tile']}-row tiles"
    encoder_kwargs = {"experts": experts, "hidden": hidden, "blend": blend}
    kwargs = {"encoder": "mlp_routed", "encoder_kwargs": encoder_kwargs}
    return desc, {**kwargs, "epochs_factor": factor, "same_epochs": 1}, proto


def _pinned(
    desc: str, encoder_kwargs: dict | None = None, kwargs: dict | None = None, **proto: Any
) -> tuple:
    """A variant trained as stop 42's routed default (15 negatives per edge, the seam pull 32
    decaying to 0 over half the steps; one expert of (64, 64) per 625 cells and no repulsion
    ramp, as to stop 43), pinned so it does not move with the package's defaults;
    ``encoder_kwargs`` makes it ``encoder="mlp_routed"`` with those settings."""
    fit_kwargs = {"negative_sample_rate": 15, **(kwargs or {})}
    if encoder_kwargs is not None:
        fit_kwargs = {"encoder": "mlp_routed", "encoder_kwargs": encoder_kwargs, **fit_kwargs}
    return desc, fit_kwargs, {"seam": 32.0, "seam_decay": 0.5, **proto}


def _schedule(kind: str):
    """A replacement for UMAPModule.configure_optimizers with another learning-rate shape."""
    import math

    import torch

    def configure(self):
        opt = torch.optim.Adam(self.encoder.parameters(), lr=self.lr)
        # Lightning's num_training_batches is still inf here: count the steps ourselves.
        total = max(self.epochs * self.steps_per_epoch, 1)
        warm = max(1, total // 20)

        def shape(s: int) -> float:
            if kind == "constant":
                return 1.0
            if kind == "linear":
                return max(1.0 - s / total, 0.01)
            if kind == "cosine":
                return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(s / total, 1.0)))
            if kind == "warmup_cosine":
                if s < warm:
                    return (s + 1) / warm
                t = (s - warm) / max(total - warm, 1)
                return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
            raise ValueError(kind)

        sched = torch.optim.lr_scheduler.LambdaLR(opt, shape)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    return configure


def _compiled_training(fixed: bool = False) -> None:
    """Train through ``torch.compile`` of the hidden layers (prototype; CPU, one call a step).

    The hidden layers (plain modules, under bfloat16 autocast where the package would use
    it) are compiled once per encoder with dynamic shapes; the output layer stays float32 as
    in the package; the step's cells are encoded in one call on all intra-op threads
    (inductor's OpenMP) instead of the package's row blocks on single-threaded workers.
    Attribution is untouched (eager modules).
    ``fixed``: static shapes instead, every step's rows padded to one size (copies of the
    first row, cut off before the output layer, so they get no gradient).
    """
    import contextlib

    import torch

    from scglassbox import _training

    compiled: dict[int, Any] = {}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        hidden = compiled.get(id(self.encoder))
        if hidden is None:
            hidden = torch.compile(self.encoder.net[:-1], dynamic=not fixed)
            compiled[id(self.encoder)] = hidden
        n = x.shape[0]
        if fixed:  # one shape for (nearly) every step: pad to 5% above the expected rows
            size = max(-(-int(1.05 * self.expected_rows()) // 256) * 256, -(-n // 256) * 256)
            x = torch.cat([x, x[:1].expand(size - n, -1)])
        if self.compute_dtype is None:
            return self.encoder.net[-1](hidden(x)[:n])
        with torch.autocast(x.device.type, dtype=self.compute_dtype):
            h = hidden(x)
        return self.encoder.net[-1](h[:n].float())

    @contextlib.contextmanager
    def no_blocks(self, workers: int):
        yield

    _training.UMAPModule._encode = encode
    _training.UMAPModule.row_blocks = no_blocks
    # fit trains with one intra-op thread (its parallelism is the row blocks): give the
    # compiled kernels the machine's threads back.
    _training.torch_threads = lambda n: contextlib.nullcontext()


#: name -> (what it changes, GlassBoxUMAP keyword arguments, prototype options)
VARIANTS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "default": ("the package's defaults", {}, {}),
    "epochs2x": ("twice the default steps", {"epochs_factor": 2}, {}),
    "lr2x": ("lr 6e-3 (default 3e-3)", {"lr": 6e-3}, {}),
    "lrhalf": ("lr 1.5e-3", {"lr": 1.5e-3}, {}),
    "lr3x": ("lr 9e-3", {"lr": 9e-3}, {}),
    "constant": (
        "constant lr (what fits did before the schedule fix)",
        {},
        {"schedule": "constant"},
    ),
    "linear": ("lr decays linearly to 1% (what the docs say)", {}, {"schedule": "linear"}),
    "linear2x": ("linear decay, lr 6e-3", {"lr": 6e-3}, {"schedule": "linear"}),
    "linear3x": ("linear decay, lr 9e-3", {"lr": 9e-3}, {"schedule": "linear"}),
    "cosine": ("cosine decay to 1%", {}, {"schedule": "cosine"}),
    "warmcos2x": ("5% warm-up, cosine, lr 6e-3", {"lr": 6e-3}, {"schedule": "warmup_cosine"}),
    "wide256": ("hidden (256, 256)", {"encoder_kwargs": {"hidden": (256, 256)}}, {}),
    "deep3": ("hidden (128, 128, 128)", {"encoder_kwargs": {"hidden": (128, 128, 128)}}, {}),
    "batch5k": ("5,000 edges per step, same epochs", {"batch_size": 5000, "same_epochs": 1}, {}),
    "batch10k": ("10,000 edges per step, same epochs", {"batch_size": 10000, "same_epochs": 1}, {}),
    "batch20k": ("20,000 edges per step, same epochs", {"batch_size": 20000, "same_epochs": 1}, {}),
    "batch40k": ("40,000 edges per step, same epochs", {"batch_size": 40000, "same_epochs": 1}, {}),
    "wide256lin2x": (
        "hidden (256, 256), linear decay, lr 6e-3",
        {"encoder_kwargs": {"hidden": (256, 256)}, "lr": 6e-3},
        {"schedule": "linear"},
    ),
    "wide512x4": (
        "hidden (512, 512), 4x the steps, linear decay (GPU-sized)",
        {"encoder_kwargs": {"hidden": (512, 512)}, "epochs_factor": 4},
        {"schedule": "linear"},
    ),
    "deep4x4": (
        "hidden (256,) * 4, 4x the steps, linear decay (GPU-sized)",
        {"encoder_kwargs": {"hidden": (256, 256, 256, 256)}, "epochs_factor": 4},
        {"schedule": "linear"},
    ),
    "neg10": ("10 negatives per edge (default 5)", {"negative_sample_rate": 10}, {}),
    "neg20": ("20 negatives per edge", {"negative_sample_rate": 20}, {}),
    "neg10lin2x": (
        "10 negatives, linear decay, lr 6e-3",
        {"negative_sample_rate": 10, "lr": 6e-3},
        {"schedule": "linear"},
    ),
    "whiten": ("inputs scaled to unit variance per feature", {}, {"scale_power": 1.0}),
    "halfwhiten": ("inputs divided by sqrt(std) per feature", {}, {"scale_power": 0.5}),
    "whiten2x": ("unit-variance inputs, lr 6e-3", {"lr": 6e-3}, {"scale_power": 1.0}),
    "gate": ("encoder mlp_gate (hinges off the origin)", {"encoder": "mlp_gate"}, {}),
    "gate256": (
        "encoder mlp_gate, hidden (256, 256)",
        {"encoder": "mlp_gate", "encoder_kwargs": {"hidden": (256, 256)}},
        {},
    ),
    "gate_neg10lr2x": (
        "encoder mlp_gate, 10 negatives, lr 6e-3",
        {"encoder": "mlp_gate", "negative_sample_rate": 10, "lr": 6e-3},
        {},
    ),
    "gpu_default_mlp_norm": (
        "the CUDA profile with mlp_norm: hidden (512,) * 4, 160,000 edges a step",
        {"encoder_kwargs": {"hidden": (512,) * 4}, "batch_size": 160_000},
        {},
    ),
    "compiled": ("torch.compile of the hidden layers (prototype)", {}, {"compiled": True}),
    "compiled_fixed": (
        "torch.compile of the hidden layers, one padded step shape (prototype)",
        {},
        {"compiled": "fixed"},
    ),
    "compiled256": (
        "hidden (256, 256), torch.compile of the hidden layers (prototype)",
        {"encoder_kwargs": {"hidden": (256, 256)}},
        {"compiled": True},
    ),
    "mlp_norm": (
        "encoder mlp_norm, by name (the default below 10,000 cells on a CPU)",
        {"encoder": "mlp_norm"},
        {},
    ),
    "routed": ("encoder mlp_routed with its automatic settings", {"encoder": "mlp_routed"}, {}),
    "routed_hard": (
        "encoder mlp_routed with its automatic settings, hard routes (no blending)",
        {"encoder": "mlp_routed", "encoder_kwargs": {"blend": 0.0}},
        {},
    ),
    **{
        name: _routed(experts, hidden, factor, blend, **proto)
        for name, experts, hidden, factor, blend, proto in (
            ("blend05", 32, (64, 64), 0.5, 0.05, {}),
            ("blend10", 32, (64, 64), 0.5, 0.1, {}),
            ("blend20", 32, (64, 64), 0.5, 0.2, {}),
            ("blend30", 32, (64, 64), 0.5, 0.3, {}),
            ("blend50", 32, (64, 64), 0.5, 0.5, {}),
            ("blend10_3q", 32, (64, 64), 0.75, 0.1, {}),
            ("blend64_05", 64, (64, 64), 0.5, 0.05, {}),
            ("blend64_10", 64, (64, 64), 0.5, 0.1, {}),
            ("blend64_20", 64, (64, 64), 0.5, 0.2, {}),
            ("blend64_20_3q", 64, (64, 64), 0.75, 0.2, {}),
            ("blend128_20", 128, (64, 64), 0.5, 0.2, {}),
            ("blend256_20", 256, (64, 64), 0.5, 0.2, {}),
            ("one32", 32, (64,), 0.5, 0.2, {}),
            ("one64", 64, (64,), 0.5, 0.2, {}),
            ("one32_3q", 32, (64,), 0.75, 0.2, {}),
            ("one32_128", 32, (128,), 0.5, 0.2, {}),
            ("three32", 32, (64, 64, 64), 0.5, 0.2, {}),
            ("three32_04", 32, (64, 64, 64), 0.4, 0.2, {}),
            ("three32_48", 32, (48, 48, 48), 0.5, 0.2, {}),
        )
    },
    **{
        name: _routed(experts, hidden, factor, **proto)
        for name, experts, hidden, factor, proto in (
            ("routed8", 8, (128, 128), 1.0, {}),
            ("routed16", 16, (128, 128), 1.0, {}),
            ("routed32", 32, (128, 128), 1.0, {}),
            ("routed64", 64, (128, 128), 1.0, {}),
            ("routed4", 4, (128, 128), 1.0, {}),
            ("routed32_half", 32, (128, 128), 0.5, {}),
            ("routed_t64", 16, (128, 128), 1.0, {"tile": 64}),
            ("routed_3q", 16, (128, 128), 0.75, {}),
            ("routed_half", 16, (128, 128), 0.5, {}),
            ("routed8_s64", 8, (64, 64), 1.0, {}),
            ("routed8_s64_half", 8, (64, 64), 0.5, {}),
            ("routed_s64", 32, (64, 64), 1.0, {}),
            ("routed_s64_half", 32, (64, 64), 0.5, {}),
            ("routed64_s64", 64, (64, 64), 1.0, {}),
            ("routed64_s64_half", 64, (64, 64), 0.5, {}),
        )
    },
    # The routed default's three changes of stop 38, one at a time and together ("before").
    **{
        f"slope{tag}": (f"routed slopes start at {v} (default 0)", {}, {"slope": v})
        for tag, v in (
            ("50", 0.5),
            ("25", 0.25),
            ("10", 0.1),
            ("05", 0.05),
            ("_m10", -0.1),
            ("_m25", -0.25),
            ("_m50", -0.5),
        )
    },
    "torch_pass": ("the torch activation pass instead of the numba kernels", {}, {"torch_pass": 1}),
    "share50": ("routed: half the automatic epochs (the default from stop 40)", {}, {"share": 0.5}),
    "before": (
        "the routed default before stop 38: slopes 0.25, torch pass, half the epochs, Adam",
        {},
        {"slope": 0.25, "torch_pass": 1, "share": 0.5, "muon": 0},
    ),
    # Stop 39: gated experts (encoder_kwargs gate=True, not the default), their starting
    # sharpness, and the default given the gates' extra time as epochs instead. Trained as
    # the default then was (Adam, 60% of the automatic epochs), as recorded.
    "routed_gate": (
        "routed: gated experts (Adam, 60% of the epochs, as in stop 39)",
        {"encoder": "mlp_routed", "encoder_kwargs": {"gate": True}},
        {"muon": 0, "share": 0.6},
    ),
    "routed_gate_share50": (
        "routed: gated experts, half the automatic epochs (Adam)",
        {"encoder": "mlp_routed", "encoder_kwargs": {"gate": True}},
        {"muon": 0, "share": 0.5},
    ),
    "share70": ("routed, Adam: 70% of the automatic epochs", {}, {"share": 0.7, "muon": 0}),
    # Stop 40: Muon on the experts' hidden layers, with half the epochs (was Adam, 60%).
    "before40": (
        "routed: the default before stop 40 (Adam, 60% of the automatic epochs)",
        {},
        {"muon": 0, "share": 0.6},
    ),
    "adam": ("routed: Adam on every weight (no Muon), half the automatic epochs", {}, {"muon": 0}),
    "muon_lr2x": ("routed: Muon's step size 0.05 (default 0.025)", {}, {"muon": 50 / 3}),
    "muon_lr4x": ("routed: Muon's step size 0.1 (default 0.025)", {}, {"muon": 100 / 3}),
    **{
        f"muon_lr2x_share{v}": (
            f"routed: Muon's step size 0.05, {v}% of the automatic epochs",
            {},
            {"muon": 50 / 3, "share": v / 100},
        )
        for v in (36, 60, 100, 200)
    },
    # The default's kNN-time curve: 9, 25, 50 and 100 epochs at 20,000 cells (default 12),
    # with Muon and (as before stop 40) with Adam.
    **{
        f"share{v}": (f"routed: {v}% of the automatic epochs (default 50%)", {}, {"share": v / 100})
        for v in (36, 60, 100, 200, 400)
    },
    # Stop 41: 15 negatives per routed edge (tried as the default) with starting layouts, in
    # float32. With Muon's momentum 0.9 it is m_mom90_neg15.
    "spectral": (
        "15 negatives per edge, regressing the spectral layout first (init='spectral')",
        {"init": "spectral", "negative_sample_rate": 15},
        {},
    ),
    "pca_init": (
        "15 negatives per edge, regressing the PCA layout first (init='pca')",
        {"init": "pca", "negative_sample_rate": 15},
        {},
    ),
    "pca_init5": ("the default, regressing the PCA layout first (init='pca')", {"init": "pca"}, {}),
    "prec32": (
        "15 negatives per edge, trained in float32 (precision='32'; 'auto': bfloat16 here)",
        {"precision": "32", "negative_sample_rate": 15},
        {},
    ),
    # Stop 41: 15 negatives per routed edge at 36-400% of the automatic epochs.
    **{
        f"curve{v}": (
            f"15 negatives per edge, {v}% of the automatic epochs (default 50%)",
            {"negative_sample_rate": 15},
            {"share": v / 100},
        )
        for v in (36, 45, 60, 70, 100, 200, 400)
    },
    **{
        f"adam_share{v}": (
            f"routed, Adam: {v}% of the automatic epochs",
            {},
            {"share": v / 100, "muon": 0},
        )
        for v in (36, 100, 200, 400)
    },
    **{
        f"routed_gate_s{v}": (
            f"routed: gated experts starting at sharpness {v} (default 2; Adam, 60%)",
            {"encoder": "mlp_routed", "encoder_kwargs": {"gate": True}},
            {"gate_scale": v, "muon": 0, "share": 0.6},
        )
        for v in (1, 3, 4, 6, 8)
    },
    "routed_gate_nob_share50": (
        "routed: gates bending at the centroid only (offsets fixed at 0), half the epochs (Adam)",
        {"encoder": "mlp_routed", "encoder_kwargs": {"gate": True}},
        {"gate_offsets_fixed": True, "share": 0.5, "muon": 0},
    ),
    # Stop 41: around the Muon default at 20,000 cells (experts and widths at the default's
    # 12 epochs, blend share, negatives, Adam's step on the output layer, Muon's momentum).
    **{
        f"m_{tag}": _routed(experts, hidden, 0.5, blend)
        for tag, experts, hidden, blend in (
            ("e32", 32, (64, 64), 0.2),
            ("e64", 64, (64, 64), 0.2),
            ("e64h48", 64, (48, 48), 0.2),
            ("e48h48", 48, (48, 48), 0.2),
            ("h96", 32, (96, 96), 0.2),
            ("three48", 32, (48, 48, 48), 0.2),
            ("blend10", 32, (64, 64), 0.1),
            ("blend35", 32, (64, 64), 0.35),
        )
    },
    **{
        f"m_neg{v}": (f"routed, Muon: {v} negatives per edge", {"negative_sample_rate": v}, {})
        for v in (7, 10, 15, 20)
    },
    "m_out2x": (
        "routed: Adam's lr 6e-3 on the output layer and slopes, Muon's unchanged (0.025)",
        {"lr": 6e-3},
        {"muon": 25 / 6},
    ),
    "m_out4x": (
        "routed: Adam's lr 1.2e-2 on the output layer and slopes, Muon's unchanged (0.025)",
        {"lr": 1.2e-2},
        {"muon": 25 / 12},
    ),
    **{
        f"m_mom{round(100 * v)}": (
            f"routed: Muon's momentum {v} (default 0.95)",
            {},
            {"momentum": v},
        )
        for v in (0.98, 0.9, 0.85, 0.8, 0.7)
    },
    **{
        f"m_rep{v}": (
            f"routed: repulsion_strength {v} (default 1), 5 negatives per edge",
            {"repulsion_strength": float(v)},
            {},
        )
        for v in (2, 3, 4)
    },
    **{
        f"m_mom{round(100 * v)}_neg{k}": (
            f"routed: Muon's momentum {v}, {k} negatives per edge",
            {"negative_sample_rate": k},
            {"momentum": v},
        )
        for v in (0.9, 0.85, 0.8)
        for k in (10, 15)
    },
    # Stop 41: a starting layout for the encoder to regress before the UMAP loss (timed with
    # the fit): the package's spectral one, or sc.tl.umap's after some epochs.
    "init_spectral": (
        "init='spectral': regress the spectral layout first",
        {"init": "spectral"},
        {},
    ),
    **{
        f"init_umap{v}": (
            f"init: sc.tl.umap's layout after {v} epochs (timed with the fit)",
            {},
            {"prelayout": v},
        )
        for v in (30, 200)
    },
    # Stop 42: every expert starts as a copy of the first, so the starting map is one
    # continuous network (k-means boundaries cut no cell type apart at the start).
    "tied": ("routed: every expert starts with the same weights", {}, {"tied": True}),
    **{
        f"tied_neg{v}": (
            f"routed: experts start with the same weights, {v} negatives per edge",
            {"negative_sample_rate": v},
            {"tied": True},
        )
        for v in (10, 15)
    },
    # Stop 42: the seam pull (_routed.SEAM_PULL): a blended cell's two expert outputs are
    # pulled together in training, so experts agree where they meet.
    **{
        f"seam{v}" + ("" if k == 5 else f"_neg{k}"): (
            f"routed: seam pull {v} per edge, {k} negatives per edge",
            {"negative_sample_rate": k},
            {"seam": v},
        )
        for v in (1, 2, 4, 8, 16, 32, 64)
        for k in (5, 10, 15)
    },
    **{
        f"seam{v}d{round(100 * d)}": (
            f"routed: seam pull {v}, decaying to 0 over {d:.0%} of the steps, 15 negatives",
            {"negative_sample_rate": 15},
            {"seam": v, "seam_decay": d},
        )
        for v in (16, 32, 64)
        for d in (0.5, 1.0)
    },
    # Stop 43: the default (15 negatives, the decaying seam pull) with Muon's momentum 0.9.
    "pull_mom90": _pinned("the default with Muon's momentum 0.9 (default 0.95)", momentum=0.9),
    # Stop 43: the default with the loss in PyTorch's operators (before the fused CPU loss).
    "torch_loss": _pinned(
        "the default with the loss in PyTorch's operators (stop 42's default)", torch_loss=True
    ),
    # Stop 43: the default with more or fewer experts, other widths, tiles, pulls, starting
    # layouts and blend shares.
    **{
        f"experts{v}": _pinned(
            f"routed: the default with {v} experts (automatic: one per 625 cells, at most 128)",
            {"experts": v},
        )
        for v in (16, 48, 50, 64, 96, 128)
    },
    **{
        f"experts{v}h{w}": _pinned(
            f"routed: the default with {v} experts of hidden ({w}, {w})",
            {"experts": v, "hidden": (w, w)},
        )
        for v in (32, 48, 64, 96, 128, 192, 256)
        for w in (32, 48, 64, 96)
    },
    **{
        f"experts{v}h{w}t{t}": _pinned(
            f"routed: the default with {v} experts of hidden ({w}, {w}), {t}-row tiles",
            {"experts": v, "hidden": (w, w)},
            tile=t,
        )
        for v in (32, 64, 96, 128, 192, 256)
        for w in (32, 48, 64)
        for t in (32, 64)
    },
    **{
        f"experts{v}h{w}_seam{p}d{round(100 * d)}": _pinned(
            f"routed: {v} experts of hidden ({w}, {w}), seam pull {p} decaying to 0 over "
            f"{d:.0%} of the steps (default 32 over 50%)",
            {"experts": v, "hidden": (w, w)},
            seam=float(p),
            seam_decay=d,
        )
        for v in (64, 96, 128, 192, 256)
        for w in (48, 64)
        for p in (32, 64, 128)
        for d in (0.5, 1.0)
    },
    **{
        f"experts{v}h{w}_spectral": _pinned(
            f"routed: {v} experts of hidden ({w}, {w}), regressing the spectral layout first",
            {"experts": v, "hidden": (w, w)},
            {"init": "spectral"},
        )
        for v in (64, 96, 128)
        for w in (48, 64)
    },
    **{
        f"experts{v}h{w}b{round(100 * b)}": _pinned(
            f"routed: {v} experts of hidden ({w}, {w}), {b:.0%} of the cells blend (default 20%)",
            {"experts": v, "hidden": (w, w), "blend": b},
        )
        for v in (64, 96, 128)
        for w in (48, 64)
        for b in (0.3, 0.4, 0.5)
    },
    # Stop 44: the tears of many experts. Experts that start as copies of one network (one
    # continuous map at the start), and Muon steps scaled by each expert's share of the signal
    # (Muon moves every expert's matrix by the same spectral norm, however few of the step's
    # cells reached it: ``mscale``: by min(1, |M_k| / mean |M|), ``M`` the momentum).
    **{
        f"experts{v}h{w}_{tag}": _pinned(
            f"routed: {v} experts of hidden ({w}, {w}), {desc}",
            {"experts": v, "hidden": (w, w)},
            **proto,
        )
        for v in (32, 48, 64, 96, 128)
        for w in (48, 64)
        for tag, desc, proto in (
            ("tied", "every expert starting as a copy of the first", {"tied": True}),
            ("mscale", "Muon steps scaled by each expert's momentum norm", {"mscale": "mean"}),
            (
                "mscalegrad",
                "Muon steps scaled by sqrt(experts x each expert's share of |G|^2)",
                {"mscale": "grad"},
            ),
            (
                "tied_mscale",
                "copies of the first at the start, Muon steps scaled by momentum norm",
                {"tied": True, "mscale": "mean"},
            ),
        )
    },
    # Stop 44: more experts with fewer negatives per edge (the weaker sampled repulsion).
    **{
        f"experts{v}h{w}_neg{k}": _pinned(
            f"routed: {v} experts of hidden ({w}, {w}), {k} negatives per edge",
            {"experts": v, "hidden": (w, w)},
            {"negative_sample_rate": k},
        )
        for v in (48, 64, 96, 128)
        for w in (48, 64)
        for k in (8, 10, 12)
    },
    # Stop 44: the default with other Newton-Schulz steps in Muon (since stop 46: 4 for
    # experts up to 48 wide, 5 beyond), whose work grows with the experts.
    **{
        f"ns{k}": (
            f"the default with {k} Newton-Schulz steps in Muon (4 up to 48 wide, else 5)",
            {},
            {"ns_steps": k, "current": True},
        )
        for k in (3, 4, 5)
    },
    # Stop 44: the default with Muon on the second hidden layer only (Adam on the first):
    # Muon's work grows with the experts.
    "muon_second": (
        "the default with Muon on the experts' second hidden layer only (Adam on the first)",
        {},
        {"muon_second": True, "current": True},
    ),
    # Stop 45: larger steps. Muon's cost is per step, and a larger step encodes fewer cells
    # per edge (more of its edges share a cell), so fewer, larger steps cost less per epoch.
    **{
        f"b{b // 1000}ke{e}": (
            f"the default with {b:,} edges per step (10,000 at 20,000 cells) and {e} epochs (12)",
            {"batch_size": b, "epochs": e},
            {"current": True},
        )
        for b in (10_000, 12_500, 15_000, 20_000)
        for e in (8, 9, 10, 11, 12, 14, 16, 18, 20)
    },
    # Stop 44: the stop-43 default (32 experts of (64, 64) per 20,000 cells, no ramp).
    "stop43": _pinned("the stop-43 default: one expert of (64, 64) per 625 cells, no ramp"),
    # Stop 44: the repulsion ramped up from a third (umap-learn's 5 negatives' worth) to full
    # over a share of the steps, so the layout forms under weak repulsion.
    **{
        f"experts{v}h{w}_ramp{sh:g}": _pinned(
            f"routed: {v} experts of hidden ({w}, {w}), the repulsion ramped from 1/3 to 1 over "
            f"{sh:.0%} of the steps",
            {"experts": v, "hidden": (w, w)},
            ramp=(1 / 3, sh),
        )
        for v in (32, 48, 64, 96, 128)
        for w in (48, 64)
        for sh in (0.25, 0.5)
    },
    # Stop 44: coarse to fine. The experts start in groups (k-means on their centroids) that
    # train as one network each until a share of the steps, then each expert on its own.
    **{
        f"experts{v}h{w}_coarse{g}s{round(100 * sh)}": _pinned(
            f"routed: {v} experts of hidden ({w}, {w}) in {g} tied groups for {sh:.0%} of the "
            "steps",
            {"experts": v, "hidden": (w, w)},
            coarse=(g, sh),
        )
        for v in (64, 96, 128)
        for w in (48, 64)
        for g in (8, 12, 16, 24, 32)
        for sh in (0.1, 0.15, 0.25, 0.5)
    },
    "gated16": ("gated mixture, 16 maps, softmax gates", {}, {"gated": (16, (128, 128), True)}),
    "gated32": ("gated mixture, 32 maps, softmax gates", {}, {"gated": (32, (128, 128), True)}),
    "hyper16": ("gated mixture, 16 maps, free gates", {}, {"gated": (16, (128, 128), False)}),
    "gated16s": ("gated mixture, 16 maps, gate MLP (64, 64)", {}, {"gated": (16, (64, 64), True)}),
}


def _muon_scaled(mode: str) -> None:
    """Scale each expert's Muon step: by ``min(1, |M_k| / mean_j |M_j|)`` (``"mean"``, ``M``
    the momentum) or by ``min(1, sqrt(experts * the expert's share``
    of the squared gradient norms (``"grad"``)."""
    from scglassbox import _optim

    base, tasks = _optim.MuonAdam._update, _optim.MuonAdam._tasks

    def whole(self, params):  # one task per stack: the norms' mean is over all its experts
        self.chunks = 1
        return tasks(self, params)

    def update(self, p, rows, lr, momentum):
        step = base(self, p, rows, lr, momentum)
        if step is None or p.dim() < 3:
            return step
        m = self.state[p]["momentum"]
        src = m if mode == "mean" else p.grad
        norms = src.flatten(1).norm(dim=1)
        if mode == "mean":
            scale = (norms / norms.mean().clamp_min(1e-12)).clamp(max=1.0)
        else:
            share = norms.square() / norms.square().sum().clamp_min(1e-24)
            scale = (share * norms.shape[0]).sqrt().clamp(max=1.0)
        return step.mul_(scale.view(-1, *([1] * (step.dim() - 1))).to(step.dtype))

    _optim.MuonAdam._update, _optim.MuonAdam._tasks = update, whole


def _coarse_start(groups: int, share: float) -> None:
    """Coarse to fine: the experts are grouped (k-means on their centroids) and each group's
    experts start as copies of one another and get the group's summed gradient, so they stay
    one network, until ``share`` of the steps; then each trains on its own."""
    import numpy as np
    import torch
    from sklearn.cluster import KMeans

    from scglassbox import _routed, _training

    place = _routed.RoutedMLP.place

    def placed(self, features, seed):
        place(self, features, seed)
        c = self.centroids.cpu().numpy()
        g = KMeans(min(groups, len(c)), n_init=1, random_state=seed % 2**32).fit_predict(c)
        group = torch.from_numpy(g).to(self.centroids.device)
        first = torch.from_numpy(np.unique(g, return_index=True)[1])[group]
        self._coarse = True
        params = [*self.weights, *getattr(self, "gate_offsets", [])]
        with torch.no_grad():
            for p in params:
                p.copy_(p.index_select(0, first))

        def tie(grad):
            if not self._coarse:
                return grad
            total = grad.new_zeros(int(group.max()) + 1, *grad.shape[1:])
            return total.index_add_(0, group, grad).index_select(0, group)

        for p in params:
            p.register_hook(tie)

    _routed.RoutedMLP.place = placed
    step = _training.UMAPModule.training_step

    def training_step(self, batch, batch_idx):
        self.encoder._coarse = self._progress() < share
        return step(self, batch, batch_idx)

    _training.UMAPModule.training_step = training_step


def _after_routed_init(fn: Any) -> None:
    """Make every RoutedMLP built from now on (in this process) call ``fn(net)`` once built."""
    from scglassbox import _routed

    init = _routed.RoutedMLP.__init__

    def patched(self, *args, **kw):
        init(self, *args, **kw)
        fn(self)

    _routed.RoutedMLP.__init__ = patched


def fit_variant(
    name: str, data: dict[str, Any], seed: int, accelerator: str = "cpu", min_dist: float = 0.1
) -> dict[str, Any]:
    """Fit one variant (in this process) and return its embedding and timings."""
    import numpy as np

    import scglassbox as gb
    from scglassbox import _graph, _params, _training

    _, kwargs, proto = VARIANTS[name]
    kwargs = dict(kwargs)
    if name != "default" and not proto.get("current"):
        # Every other variant (but those marked "current": the package's defaults with one
        # change) ran before stop 42's default (15 negatives and the seam pull for routed fits)
        # and stop 44's (96 experts of (48, 48) per 20,000 cells, the repulsion ramp): pin
        # what it ran unless it says otherwise.
        from scglassbox import _routed

        kwargs.setdefault("negative_sample_rate", 5)
        proto = {"seam": 0.0, "ramp": (1.0, 0.5), **proto}
        _routed.CELLS_PER_EXPERT, _routed.NARROW_CELLS = 625, 0
    X = np.ascontiguousarray(data["X"], dtype=np.float32)
    graph = data.get("connectivities")
    # The pruned edge count the fit itself uses (graph.nnz gave 24 default epochs, not 25, on
    # synthetic_20k); sets without a stored graph only get an estimate.
    n_edges = _graph.edge_list(graph).n_edges if graph is not None else 15 * 2 * len(X)
    factor = kwargs.pop("epochs_factor", 1)
    same = kwargs.pop("same_epochs", 0)
    if factor != 1 or same:
        base = _params.auto_epochs(n_edges, _params.auto_batch_size(len(X), n_edges))
        kwargs["epochs"] = int(base * factor)
    if "scale_power" in proto:
        # Rescaling features is a linear input map: contributions stay exact per feature.
        X = X / X.std(axis=0, keepdims=True) ** proto["scale_power"]
    if "tile" in proto:
        from scglassbox import _routed

        _routed.TILE = proto["tile"]
    if "slope" in proto:
        from scglassbox import _routed

        _routed.SLOPE_INIT = proto["slope"]
    if proto.get("gate_offsets_fixed"):

        def fixed(net) -> None:
            for b in getattr(net, "gate_offsets", []):
                b.requires_grad_(False)

        _after_routed_init(fixed)
    if proto.get("tied"):
        import torch

        def tied(net) -> None:
            with torch.no_grad():
                for w in net.weights:
                    w.copy_(w[:1].expand_as(w))

        _after_routed_init(tied)
    if proto.get("muon_second"):
        from scglassbox import _routed

        _routed.RoutedMLP.muon_parameters = lambda self: list(self.weights[1:-1])
    if "ns_steps" in proto:
        _training.MUON_NS_STEPS = proto["ns_steps"]
    if "ramp" in proto:  # routed fits' repulsion ramp (1.0: none)
        _training.REPULSION_START, _training.REPULSION_RAMP_STEPS = proto["ramp"]
    if "coarse" in proto:
        _coarse_start(*proto["coarse"])
    if "seam" in proto:
        from scglassbox import _routed

        _routed.SEAM_PULL = float(proto["seam"])
        # A constant pull unless the variant decays it (the default: over half the steps).
        _routed.SEAM_PULL_STEPS = float(proto.get("seam_decay", float("inf")))
    if "gate_scale" in proto:
        from scglassbox import _routed

        _routed.GATE_SCALE_INIT = float(proto["gate_scale"])
    if proto.get("torch_loss"):
        from scglassbox import _loss

        _loss.supported = lambda emb: False
    if proto.get("torch_pass"):
        from scglassbox import _kernels

        _kernels.supported = lambda z: False
    if "share" in proto:
        _params.ROUTED_EPOCH_SHARE = proto["share"]
    if "muon" in proto:
        _training.MUON_LR_RATIO = proto["muon"]
    if "momentum" in proto:
        from scglassbox import _optim

        _optim.MuonAdam.__init__.__kwdefaults__["momentum"] = proto["momentum"]
    if "mscale" in proto:
        _muon_scaled(proto["mscale"])
    if "schedule" in proto:
        _training.UMAPModule.configure_optimizers = _schedule(proto["schedule"])
    if proto.get("compiled"):
        _compiled_training(fixed=proto["compiled"] == "fixed")
    if "gated" in proto:
        import torch

        experts, hidden, softmax = proto["gated"]
        torch.manual_seed(seed)
        kwargs["encoder"] = gated_encoder(X.shape[1], 2, experts, hidden, softmax)
    kwargs.setdefault("min_dist", min_dist)
    pre_s = 0.0
    if "prelayout" in proto:
        pre = run.run_sc_umap(data, seed, proto["prelayout"], min_dist)
        kwargs["init"], pre_s = pre["embedding"], pre["fit_s"]
    model = gb.GlassBoxUMAP(random_state=seed, quiet=True, accelerator=accelerator, **kwargs)
    t0 = time.perf_counter()
    emb = model.fit_transform(X, graph=graph)
    fit_s = time.perf_counter() - t0 + pre_s
    n_check = min(len(X), 2000)
    c = model.compute_contributions(X[:n_check])
    exact = float(np.abs(c.sum(-1) - emb[:n_check]).max() / np.abs(emb).max())
    out = {"embedding": emb, "fit_s": fit_s, "epochs": int(model.epochs_), "exactness": exact}
    return {**out, "model": model}


def heldout_knn(spec: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Fit on 80% of the cells, map the other 20% with ``transform``, and score the new cells.

    The score of a held-out cell is the share of its 15 nearest training cells in the input
    space that are among its 15 nearest training cells in the map: how well new cells land
    among the cells they resemble.
    """
    import numpy as np
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(1000 + spec["seed"])
    n = len(data["X"])
    test = np.zeros(n, dtype=bool)
    test[rng.choice(n, n // 5, replace=False)] = True
    train = {"X": data["X"][~test], "meta": data["meta"]}
    if data.get("connectivities") is not None:
        train["connectivities"] = data["connectivities"][~test][:, ~test].tocsr()
    X_test = np.ascontiguousarray(data["X"][test], dtype=np.float32)
    if spec["variant"] == "umap-learn":
        model = run.umap_learn_model(spec["seed"], None, spec.get("min_dist", 0.1))
        t0 = time.perf_counter()
        emb = model.fit_transform(train["X"])
        out = {"fit_s": time.perf_counter() - t0, "epochs": 0}
    else:
        out = fit_variant(spec["variant"], train, spec["seed"], *_fit_options(spec))
        emb, model = out.pop("embedding"), out.pop("model")
    new = model.transform(X_test)
    k = run.K
    near_in = (
        NearestNeighbors(n_neighbors=k).fit(train["X"]).kneighbors(X_test, return_distance=False)
    )
    near_map = NearestNeighbors(n_neighbors=k).fit(emb).kneighbors(new, return_distance=False)
    shared = (near_in[:, :, None] == near_map[:, None, :]).any(axis=2).sum(axis=1)
    out["knn_train"] = run.knn_preservation(run._knn(train["X"], k), emb)
    out["knn"] = float(shared.mean() / k)
    return out


def _fit_options(spec: dict[str, Any]) -> tuple[str, float]:
    """``(accelerator, min_dist)`` of a child's spec (records before ``--min-dist``: 0.1)."""
    return spec.get("accelerator", "cpu"), spec.get("min_dist", 0.1)


def child(spec: dict[str, Any]) -> None:
    """Run one fit (or a baseline) and print its metrics as a JSON line."""
    import warnings

    warnings.filterwarnings("ignore")
    data = run.load_dataset(spec["dataset"], Path(spec["cache"]))
    # Warm fits, as in run.py: umap-learn's import JIT-compiles for seconds, and sc.tl.umap
    # would otherwise pay it inside its timed call.
    import umap  # noqa: F401

    if spec.get("heldout"):
        out = heldout_knn(spec, data)
        record = {
            k: v for k, v in out.items() if k in ("fit_s", "epochs", "exactness", "knn_train")
        }
        print("RESULT " + json.dumps({**spec, **record, "knn": out["knn"]}), flush=True)
        return
    if spec["variant"] == "umap-learn":
        out = run.run_umap_learn(data, spec["seed"], None, spec.get("min_dist", 0.1))
    elif spec["variant"] == "sc.tl.umap":
        out = run.run_sc_umap(data, spec["seed"], None, spec.get("min_dist", 0.1))
    else:
        out = fit_variant(spec["variant"], data, spec["seed"], *_fit_options(spec))
    emb = out.pop("embedding")
    knn = run.knn_preservation(run._knn(data["X"], run.K), emb)
    record = {k: v for k, v in out.items() if k in ("fit_s", "epochs", "exactness")}
    if spec.get("more"):  # trustworthiness on a fixed sample; 15-NN accuracy of the labels
        from sklearn.manifold import trustworthiness

        sub = run.trust_subsample(len(emb), 0)
        record["trust"] = float(trustworthiness(data["X"][sub], emb[sub], n_neighbors=run.K))
        record["label_acc"] = run.label_accuracy(emb, data["labels"], spec["seed"])
        record["dist_corr"] = distance_correlation(data["X"], emb)
        record["split"] = split_share(emb, data["labels"])
    if spec.get("save"):  # the embedding, for figures
        import numpy as np

        name = f"{spec['dataset']}_{spec['variant']}_{spec['seed']}.npy"
        Path(spec["save"]).mkdir(parents=True, exist_ok=True)
        np.save(Path(spec["save"]) / name, emb)
    print("RESULT " + json.dumps({**spec, **record, "knn": knn}), flush=True)


def distance_correlation(X: Any, emb: Any, cells: int = 1500) -> float:
    """Global structure: Spearman correlation of the distances between a fixed random sample
    of cells in the input space and in the map."""
    import numpy as np
    from scipy.spatial.distance import pdist
    from scipy.stats import spearmanr

    sub = np.random.default_rng(0).choice(len(emb), min(cells, len(emb)), replace=False)
    return float(spearmanr(pdist(np.asarray(X[sub])), pdist(emb[sub])).statistic)


def split_share(emb: Any, labels: Any, k: int = 10) -> float:
    """The share of cells outside the largest piece of their label in the map: a cell type
    torn into pieces, or cells strewn between types. Pieces: the connected components of the
    label's cells' 10-NN graph in the map, without edges longer than 3x the median (0 for
    ``sc.tl.umap`` on synthetic_20k and synthetic_100k). A torn type only where each label is
    one cluster in the input: the noisy and batches sets' labels span several."""
    import numpy as np
    from scipy.sparse.csgraph import connected_components
    from sklearn.neighbors import kneighbors_graph

    labels = np.asarray(labels)
    outside = 0
    for group in np.unique(labels):
        cells = emb[labels == group]
        if len(cells) <= k:
            continue
        graph = kneighbors_graph(cells, k, mode="distance")
        graph.data[graph.data > 3 * np.median(graph.data)] = 0
        graph.eliminate_zeros()
        _, piece = connected_components(graph, directed=False)
        outside += len(cells) - np.bincount(piece).max()
    return outside / len(emb)


def plot(records: Path, png: Path) -> None:
    """kNN preservation against fit time, one panel per dataset, means over seeds."""
    from collections import defaultdict

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict = defaultdict(list)
    for line in Path(records).read_text().splitlines():
        r = json.loads(line)
        if "error" not in r:
            groups[(r["dataset"], r["variant"])].append((r["fit_s"], r["knn"], r.get("epochs")))
    datasets = sorted({d for d, _ in groups}, key=lambda d: (run.SYNTHETIC_SETS.get(d, 0), d))
    cols = min(len(datasets), 2 if len(datasets) == 4 else 3)
    rows = -(-len(datasets) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 4.2 * rows), squeeze=False)
    for ax in axes.ravel()[len(datasets) :]:
        ax.set_visible(False)
    for ax, dataset in zip(axes.ravel(), datasets, strict=False):
        for (d, variant), pts in sorted(groups.items()):
            if d != dataset:
                continue
            t = sum(p[0] for p in pts) / len(pts)
            k = sum(p[1] for p in pts) / len(pts)
            baseline = variant in ("umap-learn", "sc.tl.umap")
            epochs = {p[2] for p in pts}
            label = variant if baseline or len(epochs) != 1 else f"{variant} ({epochs.pop()} ep)"
            ax.scatter(t, k, marker="*" if baseline else "o", s=120 if baseline else 40,
                       color="black" if baseline else ("tab:red" if variant == "default"
                                                       else "tab:blue"))  # fmt: skip
            ax.annotate(label, (t, k), textcoords="offset points", xytext=(4, 3), fontsize=8)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("fit time (s, 2 CPU cores)")
        ax.set_ylabel("kNN preservation@15")
        ax.set_title(dataset)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["synthetic_20k"])
    parser.add_argument("--variants", nargs="+", default=["default"])
    parser.add_argument("--baselines", nargs="*", default=["umap-learn", "sc.tl.umap"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--cache", type=Path, default=run.DEFAULT_CACHE)
    parser.add_argument("--accelerator", default="cpu", choices=("cpu", "gpu"))
    parser.add_argument("--out", type=Path, help="also write the records as JSON lines")
    parser.add_argument(
        "--plot",
        type=Path,
        nargs=2,
        metavar=("RECORDS", "PNG"),
        help="draw kNN preservation against fit time from --out records",
    )
    parser.add_argument(
        "--heldout",
        action="store_true",
        help="fit on 80%% of the cells and score the other 20%% mapped by transform",
    )
    parser.add_argument(
        "--more",
        action="store_true",
        help="also trustworthiness (3,000 cells), 15-NN accuracy of the set's labels, "
        "dist_corr (Spearman correlation of 1,500 cells' distances, input against map) and "
        "split (the share of cells outside their label's largest piece in the map)",
    )
    parser.add_argument(
        "--min-dist",
        type=float,
        default=0.1,
        help="min_dist of every method (default 0.1, umap-learn's; scanpy's default is 0.5)",
    )
    parser.add_argument("--save", type=Path, help="save every embedding here (.npy)")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.list:
        for name, (what, _, _) in VARIANTS.items():
            print(f"{name:10s} {what}")
        return
    if args.child:
        child(json.loads(args.child))
        return
    if args.plot:
        plot(*args.plot)
        return
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; see --list")
    args.cache = args.cache.expanduser()
    (args.cache / "runs").mkdir(parents=True, exist_ok=True)
    run.ensure_datasets(args.datasets, args.cache, args.cache / "runs")
    rows = []
    for dataset in args.datasets:
        for variant in [*args.baselines, *args.variants]:
            for seed in args.seeds:
                spec = {"dataset": dataset, "variant": variant, "seed": seed,
                        "cache": str(args.cache), "accelerator": args.accelerator,
                        "heldout": args.heldout, "more": args.more,
                        "min_dist": args.min_dist,
                        "save": str(args.save) if args.save else None}  # fmt: skip
                res = subprocess.run(
                    [sys.executable, __file__, "--child", json.dumps(spec)],
                    capture_output=True, text=True, check=False,
                )  # fmt: skip
                line = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")]
                rec = json.loads(line[-1][7:]) if line else {**spec, "error": res.stderr[-400:]}
                rows.append(rec)
                print(json.dumps(rec), flush=True)
                if args.out:
                    with open(args.out, "a") as f:
                        f.write(json.dumps(rec) + "\n")
    what = "held-out kNN@15" if args.heldout else "kNN@15"
    print(f"\n| dataset | variant | seed | epochs | fit (s) | {what} | exactness |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        if "error" in r:
            print(f"| {r['dataset']} | {r['variant']} | {r['seed']} | failed | | | |")
            continue
        ex = f"{r['exactness']:.1e}" if "exactness" in r else ""
        keys = ("trust", "label_acc", "dist_corr", "split")
        more = "".join(f" {k} {r[k]:.3f}" for k in keys if k in r)
        print(f"| {r['dataset']} | {r['variant']} | {r['seed']} | {r.get('epochs', '')} "
              f"| {r['fit_s']:.1f} | {r['knn']:.3f} | {ex}{more} |")  # fmt: skip


if __name__ == "__main__":
    main()
