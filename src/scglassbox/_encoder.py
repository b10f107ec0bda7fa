"""Encoders whose outputs split exactly into per-feature contributions.

Two built-in families, both bias-free with PReLU activations:

``"mlp"``
    Strictly positively homogeneous of degree 1: ``f(c x) = c f(x)`` for ``c > 0``. Within each
    linear region ``f(x) = J(x) x``, so the contributions ``J(x) * x`` are true gradient x input
    (equal to Integrated Gradients from the baseline 0).
``"mlp_norm"``
    The same with a shift-free normalisation after each hidden activation (divide by the root
    mean square of the layer). The network is scale-invariant (degree 0):
    ``f(2x) = f(x)``. Its contributions ``A(x) * x`` use the Jacobian with every normalisation
    scale frozen at its value for that cell: still an exact additive split, but not a
    gradient (the true gradient satisfies ``J x = 0``).
``"mlp_gate"``
    Like ``"mlp_norm"``, with each PReLU replaced by a gated unit
    ``h = z * sigmoid(s * (z + b))`` (``z = W x`` bias-free; ``s`` and ``b`` learned per unit).
    The value path has no bias, but the gate bends where ``z = -b``, away from the origin, so a
    tight cluster far from the mean cell gets linear pieces of its own. With every gate and
    normalisation scale frozen at its value for the cell (attribution), each layer is
    ``diag(g) W x``: ``f(x) = A(x) x`` exactly, and the contributions ``A(x) * x`` are an exact
    additive split, not gradient x input.
``"mlp_routed"``
    K ``"mlp_norm"`` networks ("experts"); each cell is encoded by the expert of its nearest
    centroid, placed by k-means on the inputs when a fit starts (see :mod:`._routed`). The
    route is piecewise constant, so with the scales frozen ``f(x) = A_k(x) x``: the same
    exact frozen-scale split as ``"mlp_norm"``, with K times the weights at about its cost per
    cell. Cells near a boundary blend their two nearest experts with weights that are
    constants of the route, so the map has no seams and the split stays exact.
    ``encoder_kwargs``: ``hidden`` (each expert's), ``experts`` and ``blend`` (the share of
    cells that blend; 0 for hard routes).
``"conv"`` (alias ``"default_conv"``, the reference package's name)
    For images ``(C, H, W)``: bias-free 3x3 convolutions of stride 2 (padding 1), each followed
    by a per-channel PReLU, then a bias-free PReLU MLP head (``"mlp"``, or ``"mlp_norm"`` with
    ``norm=True``). It reads the flattened pixels and reshapes them itself. Without ``norm`` it
    is positively homogeneous of degree 1, so its contributions are gradient x input per pixel
    (and channel), as for ``"mlp"``; with ``norm`` they are the frozen-scale split of
    ``"mlp_norm"``.

Encoders registered with :func:`register_encoder` are built by name as in the reference package
(``cls(input_dims=..., n_components=..., **encoder_kwargs)``) and wrapped in
:class:`RegisteredEncoder`, which reshapes the flattened rows to ``input_dims``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from ._validation import check_int, check_real

ENCODERS = ("mlp", "mlp_norm", "mlp_gate", "mlp_routed")
#: Built-in MLPs that share one network for every cell (the GPU widths apply to these).
PLAIN_MLPS = ("mlp", "mlp_norm", "mlp_gate")
#: Built-in encoders for images ``(C, H, W)`` (``(H, W)`` is read as one channel).
CONV_ENCODERS = ("conv",)
#: Other names of built-in encoders: the reference package's.
ALIASES = {"default_conv": "conv"}
#: What ``encoder="default"`` means when no fit resolves it (a bare ``build_encoder``). A fit
#: resolves it by size and device with :func:`scglassbox._params.default_encoder`: blended
#: ``"mlp_routed"`` on a CPU from 10,000 cells, this otherwise (docs/performance.md).
DEFAULT_ENCODER = "mlp_norm"
DEFAULT_HIDDEN = (128, 128)
#: Output channels of the convolutions of ``"conv"`` (one stride-2 layer each).
DEFAULT_CHANNELS = (16, 32)
#: Hidden widths of the MLP head of ``"conv"``.
DEFAULT_CONV_HIDDEN = (128,)


class ScaleNorm(nn.Module):
    """Divide a hidden vector by its root mean square (no shift, no gain).

    Maps 0 to 0. With ``frozen_scale`` set (during attribution) the scale is treated as a
    constant, which makes the layer linear in its input. A gain would be redundant: the next
    bias-free linear layer absorbs it.
    """

    def __init__(self, eps: float = 1e-6, dim: int | tuple[int, ...] = -1) -> None:
        super().__init__()
        self.eps = eps
        self.dim = dim  # (-3, -2, -1) after a convolution: channels and pixels together
        self.frozen_scale = False

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        inv_scale = torch.rsqrt(h.pow(2).mean(dim=self.dim, keepdim=True) + self.eps)
        if self.frozen_scale:
            inv_scale = inv_scale.detach()
        return h * inv_scale


class PReLU(nn.PReLU):
    """:class:`torch.nn.PReLU` computed as ``relu(x) - a * relu(-x)``.

    The same function, bit for bit in float32 (one of the two terms is exactly zero), with
    the same parameter, but its backward pass avoids PyTorch's PReLU backward kernel (3x
    slower in bfloat16, 1.4x in float32, measured on 4,608 x 128 activations), which the
    contributions' backward passes would otherwise run. Training uses
    :meth:`GlassBoxMLP.hidden_for_training` instead.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return prelu(x, self.weight)


def prelu(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """:class:`PReLU`'s function, ``relu(x) - weight * relu(-x)``, for shared slopes too."""
    return torch.relu(x) - weight.to(x.dtype) * torch.relu(-x)


class Gate(nn.Module):
    """``z * sigmoid(s * (z + b))`` per unit: a bias-free value, a gate with an offset.

    With ``frozen_scale`` set (during attribution) the gate is treated as a constant, which
    makes the unit linear in ``z``. ``b`` starts from N(0, 1), so units bend at different
    places from the first step (measured better than starting at 0, docs/performance.md).
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.offset = nn.Parameter(torch.randn(width))
        self.slope = nn.Parameter(torch.ones(width))
        self.frozen_scale = False

    def gate(self, z: torch.Tensor) -> torch.Tensor:
        """The gate's value ``sigmoid(s * (z + b))``."""
        s, b = self.slope.to(z.dtype), self.offset.to(z.dtype)
        return torch.sigmoid(s * (z + b))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        g = self.gate(z)
        if self.frozen_scale:
            g = g.detach()
        return z * g


class _GateScaleNorm(torch.autograd.Function):
    """:class:`Gate` followed by :class:`ScaleNorm`, with a hand-written backward pass.

    The same function as the two modules (up to rounding), for training only; attribution
    keeps the modules, whose frozen gate and scale this does not model.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, slope: torch.Tensor, offset: torch.Tensor, eps: float):
        s, b = slope.to(z.dtype), offset.to(z.dtype)
        u = z + b
        g = torch.sigmoid(s * u)
        y = z * g
        sq = torch.linalg.vector_norm(y, dim=-1, keepdim=True)
        sq = sq.to(torch.promote_types(sq.dtype, torch.float32)).square_()
        inv = torch.rsqrt(sq.div_(y.shape[-1]).add_(eps)).to(y.dtype)
        out = y.mul_(inv)
        ctx.save_for_backward(z, u, g, s, out, inv)
        ctx.param_dtype = slope.dtype
        return out

    @staticmethod
    def backward(ctx, gout: torch.Tensor):
        z, u, g, s, out, inv = ctx.saved_tensors
        # Through the normalisation: inv * (g - out * mean(g * out)) along the layer.
        dot = (gout * out).sum(-1, keepdim=True).div_(-out.shape[-1])
        gy = torch.addcmul(gout, out, dot).mul_(inv)
        # y = z * sigmoid(s * u), u = z + b: dy/dz = g + z g (1 - g) s, dy/db = z g (1 - g) s,
        # dy/ds = z g (1 - g) u.
        q = gy * z * g * (1 - g)
        grad_s = (q * u).sum(0).to(ctx.param_dtype)
        qs = q.mul_(s)
        grad_b = qs.sum(0).to(ctx.param_dtype)
        return torch.addcmul(qs, gy, g), grad_s, grad_b, None


class _PReLUScaleNorm(torch.autograd.Function):
    """PReLU, optionally followed by :class:`ScaleNorm`, with a hand-written backward pass.

    The same function as the two modules (up to rounding in the normalisation), for training
    only: about 12 passes over the activations, forward and backward, where autograd makes
    about 20, and those passes are the larger part of a CPU training step after the matrix
    products. Comparisons and masks are avoided: on CPU they run several times slower than
    arithmetic in bfloat16. Attribution keeps the modules, whose frozen normalisation this
    does not model.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, norm: bool, eps: float):
        w = weight.to(x.dtype)
        ctx.weight_dtype, ctx.norm = weight.dtype, norm
        y = torch.prelu(x, w)  # torch's forward kernel is fast; its backward is not
        if not norm:
            ctx.save_for_backward(x, w)
            return y
        # Reductions stay in x's dtype: CPU reductions accumulate bfloat16 in float32 anyway,
        # and asking for a float32 result first copies the whole tensor to float32.
        sq = torch.linalg.vector_norm(y, dim=-1, keepdim=True)
        sq = sq.to(torch.promote_types(sq.dtype, torch.float32)).square_()
        inv = torch.rsqrt(sq.div_(y.shape[-1]).add_(eps)).to(y.dtype)
        out = y * inv
        ctx.save_for_backward(x, w, out, inv)
        return out

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        if ctx.norm:
            x, w, out, inv = ctx.saved_tensors
            # d(y * inv)/dy applied to g: inv * (g - out * mean(g * out)) along the layer.
            dot = (g * out).sum(-1, keepdim=True).div_(-out.shape[-1])
            g = torch.addcmul(g, out, dot).mul_(inv)
        else:
            x, w = ctx.saved_tensors
        # Slope 1 where x > 0, w elsewhere (torch's PReLU convention at 0).
        g_pos = torch.ops.aten.threshold_backward(g, x, 0)
        g_neg = g - g_pos
        grad_w = None
        if ctx.needs_input_grad[1]:
            grad_w = (g_neg * x).sum(0).to(ctx.weight_dtype)
        return g_neg.mul_(w).add_(g_pos), grad_w, None, None


class GlassBoxMLP(nn.Module):
    """Bias-free PReLU multilayer perceptron, optionally with :class:`ScaleNorm` layers.

    Parameters
    ----------
    n_in
        Number of input features.
    n_out
        Number of embedding dimensions.
    hidden
        Widths of the hidden layers.
    norm
        Insert a :class:`ScaleNorm` after each hidden activation.
    gate
        Use :class:`Gate` units instead of PReLU (requires ``norm``).
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        hidden: Sequence[int] = DEFAULT_HIDDEN,
        norm: bool = False,
        gate: bool = False,
    ) -> None:
        super().__init__()
        if gate and not norm:
            raise ValueError("gated units are built with ScaleNorm (norm=True).")
        layers: list[nn.Module] = []
        width = n_in
        for h in hidden:
            layers += [nn.Linear(width, h, bias=False), Gate(h) if gate else PReLU(h)]
            if norm:
                layers.append(ScaleNorm())
            width = h
        layers.append(nn.Linear(width, n_out, bias=False))
        self.net = nn.Sequential(*layers)
        self.n_in, self.n_out, self.hidden, self.norm = n_in, n_out, tuple(hidden), norm
        self.gate = gate

    #: Trains in bfloat16 under ``precision='auto'`` (measured: faster at the same quality), and
    #: reads its input through a Linear layer first, so inputs may be stored in that dtype.
    bf16_training = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_forward(
        self, x: torch.Tensor, compute_dtype: torch.dtype | None = None, rows: int | None = None
    ) -> torch.Tensor:
        """The forward pass training uses: the same function, faster.

        Hidden layers go through the fused activation (in ``compute_dtype`` under autocast when
        given); the output layer stays float32, since bfloat16's 8-bit mantissa would round
        coordinates near 10 to about 0.04, the scale of nearest-neighbour distances. Only the
        first ``rows`` rows reach the output layer (the rest are padding).
        """
        if compute_dtype is None:
            h = self.hidden_for_training(x)
        else:
            with torch.autocast(x.device.type, dtype=compute_dtype):
                h = self.hidden_for_training(x)
            h = h.float() if rows is None else h[:rows].float()
        return self.net[-1](h)

    def hidden_for_training(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's output, through the fused activation (training only)."""
        layers = list(self.net)[:-1]
        step = 3 if self.norm else 2  # Linear, PReLU[, ScaleNorm]
        for i in range(0, len(layers), step):
            linear, act = layers[i], layers[i + 1]
            eps = layers[i + 2].eps if self.norm else 0.0
            if self.gate:
                x = _GateScaleNorm.apply(linear(x), act.slope, act.offset, eps)
            else:
                x = _PReLUScaleNorm.apply(linear(x), act.weight, self.norm, eps)
        return x

    @property
    def architecture(self) -> dict:
        """Everything needed to rebuild this module (weights aside)."""
        return {
            "name": "mlp_gate" if self.gate else ("mlp_norm" if self.norm else "mlp"),
            "n_in": self.n_in,
            "n_out": self.n_out,
            "hidden": list(self.hidden),
        }


class ChannelPReLU(nn.PReLU):
    """PReLU with one slope per channel of ``(b, C, H, W)`` maps, as ``relu(x) - a * relu(-x)``.

    :class:`PReLU` above broadcasts its slopes over the last axis, which for feature maps is
    the image width, not the channel.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype).view(-1, *([1] * (x.dim() - 2)))
        return torch.relu(x) - w * torch.relu(-x)


def image_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    """``(C, H, W)`` of a sample shape ``(H, W)`` or ``(C, H, W)``; ``ValueError`` otherwise."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(
            f"a convolutional encoder needs images (n, H, W) or (n, C, H, W); the samples "
            f"have shape {shape}."
        )
    return shape


class GlassBoxConv(nn.Module):
    """Bias-free convolutional encoder for images, exact like :class:`GlassBoxMLP`.

    ``Conv2d(3x3, stride 2, padding 1, bias=False) -> ChannelPReLU`` per entry of
    ``channels``, flattened into a bias-free PReLU :class:`GlassBoxMLP` head. Every layer is
    linear without offset within each linear region, so ``f(x) = A(x) x`` exactly.

    Parameters
    ----------
    input_shape
        ``(C, H, W)`` of one sample (``(H, W)``: one channel). The module reads rows of
        ``C * H * W`` flattened pixels (C order) and reshapes them.
    n_out
        Number of embedding dimensions.
    channels
        Output channels of each convolution (each halves the height and width, rounding up).
    hidden
        Widths of the head's hidden layers.
    norm
        Insert a :class:`ScaleNorm` after each of the head's hidden activations (frozen during
        attribution, as in ``"mlp_norm"``).
    """

    #: Not measured in bfloat16: ``precision='auto'`` trains it in float32.
    bf16_training = False

    def __init__(
        self,
        input_shape: Sequence[int],
        n_out: int,
        channels: Sequence[int] = DEFAULT_CHANNELS,
        hidden: Sequence[int] = DEFAULT_CONV_HIDDEN,
        norm: bool = False,
    ) -> None:
        super().__init__()
        c, h, w = self.input_shape = image_shape(input_shape)
        layers: list[nn.Module] = []
        for out in channels:
            layers += [nn.Conv2d(c, out, 3, stride=2, padding=1, bias=False), ChannelPReLU(out)]
            c, h, w = out, (h + 1) // 2, (w + 1) // 2  # floor((h + 2 - 3) / 2) + 1
        self.conv = nn.Sequential(*layers)
        self.head = GlassBoxMLP(c * h * w, n_out, hidden=hidden, norm=norm)
        self.n_in, self.n_out = math.prod(self.input_shape), n_out
        self.channels, self.hidden, self.norm = tuple(channels), tuple(hidden), norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], *self.input_shape)
        return self.head(self.conv(x).flatten(1))

    @property
    def architecture(self) -> dict:
        """Everything needed to rebuild this module (weights aside)."""
        return {
            "name": "conv",
            "n_in": self.n_in,
            "n_out": self.n_out,
            "input_shape": list(self.input_shape),
            "channels": list(self.channels),
            "hidden": list(self.hidden),
            "norm": bool(self.norm),
        }


#: Encoder classes registered with :func:`register_encoder`, by name.
_REGISTRY: dict[str, type[nn.Module]] = {}
#: Names that :func:`register_encoder` refuses: the built-in ones, and the stored name of an
#: unregistered module.
RESERVED = frozenset({"default", "custom", *ENCODERS, *CONV_ENCODERS, *ALIASES})


def register_encoder(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Register an encoder class under ``name`` for ``GlassBoxUMAP(encoder=name)``.

    As in the reference package: a class decorator, and ``fit`` builds the encoder as
    ``cls(input_dims=input_dims, n_components=n_components, **encoder_kwargs)``, where
    ``input_dims`` is the shape of one sample as the encoder reads it: ``(n_features,)``,
    ``(pca_components,)`` with PCA, ``(H, W)`` or ``(C, H, W)`` for images. Its ``forward``
    receives ``(batch, *input_dims)`` and returns ``(batch, n_components)``. ``fit`` checks that
    its contributions reconstruct its output (bias-free and piecewise linear through the
    origin, or with data-dependent factors in modules that have a ``frozen_scale`` flag) and
    refuses it otherwise. A saved model stores the name, ``input_dims`` and ``encoder_kwargs``
    (numbers, strings, booleans, ``None`` and lists of them; lists come back as lists), so the
    class must be registered again, under the same name, before the model is loaded.

    Parameters
    ----------
    name
        The encoder's name. Built-in names (``"default"``, ``"mlp"``, ``"conv"``...) are
        refused, and so is a name registered to another class. Registering a class of the same
        module and qualified name again (a notebook cell run twice) replaces it.

    Returns
    -------
    The decorator, which registers the class and returns it unchanged.

    Examples
    --------
    >>> import math
    >>> import scglassbox as gb
    >>> from torch import nn
    >>> @gb.register_encoder("tiny")
    ... class Tiny(nn.Module):
    ...     def __init__(self, input_dims, n_components, width=16):
    ...         super().__init__()
    ...         self.net = nn.Sequential(
    ...             nn.Flatten(),
    ...             nn.Linear(math.prod(input_dims), width, bias=False),
    ...             nn.PReLU(),
    ...             nn.Linear(width, n_components, bias=False),
    ...         )
    ...
    ...     def forward(self, x):
    ...         return self.net(x)
    >>> est = gb.GlassBoxUMAP(encoder="tiny", encoder_kwargs={"width": 32})
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"an encoder name must be a non-empty string, got {name!r}.")
    if name in RESERVED:
        raise ValueError(f"{name!r} is the name of a built-in encoder; choose another name.")

    def decorator(cls: type[nn.Module]) -> type[nn.Module]:
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise TypeError(f"register_encoder decorates torch.nn.Module classes, got {cls!r}.")
        old = _REGISTRY.get(name)
        if old is not None and _qualname(old) != _qualname(cls):
            raise ValueError(f"Encoder {name!r} is already registered (to {_qualname(old)}).")
        _REGISTRY[name] = cls
        return cls

    return decorator


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def registered_encoders() -> dict[str, type[nn.Module]]:
    """A copy of the registry of :func:`register_encoder`: ``{name: class}``."""
    return dict(_REGISTRY)


class RegisteredEncoder(nn.Module):
    """A registered encoder class, built by name and fed rows reshaped to ``input_dims``.

    Parameters
    ----------
    name
        The name given to :func:`register_encoder`.
    input_dims
        Shape of one sample as the encoder reads it.
    n_out
        Number of embedding dimensions.
    kwargs
        More keyword arguments of the class's constructor (``encoder_kwargs``).
    """

    def __init__(
        self, name: str, input_dims: Sequence[int], n_out: int, kwargs: dict[str, Any]
    ) -> None:
        super().__init__()
        cls = _REGISTRY.get(name)
        if cls is None:
            raise ValueError(
                f"no encoder is registered as {name!r}; registered: {sorted(_REGISTRY)}."
            )
        self.name, self.input_dims = name, tuple(int(d) for d in input_dims)
        self.n_in, self.n_out, self.kwargs = math.prod(self.input_dims), int(n_out), dict(kwargs)
        try:
            self.inner = cls(input_dims=self.input_dims, n_components=self.n_out, **self.kwargs)
        except TypeError as e:
            raise TypeError(
                f"failed to build the encoder registered as {name!r}: its class must accept "
                f"input_dims and n_components (and the encoder_kwargs given). {e}"
            ) from e
        # Trains in bfloat16 under precision='auto' only if the class says it was measured so.
        self.bf16_training = bool(getattr(self.inner, "bf16_training", False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.reshape(x.shape[0], *self.input_dims))

    @property
    def architecture(self) -> dict:
        """Everything needed to rebuild this module (weights aside)."""
        return {
            "name": self.name,
            "n_in": self.n_in,
            "n_out": self.n_out,
            "input_shape": list(self.input_dims),
            "kwargs": dict(self.kwargs),
        }


def canonical_name(encoder: object) -> object:
    """The canonical name of a built-in encoder's alias (``"default_conv"`` -> ``"conv"``)."""
    return ALIASES.get(encoder, encoder) if isinstance(encoder, str) else encoder


def encoder_names() -> tuple[str, ...]:
    """Every name ``encoder=`` accepts now: built-in, aliases and registered ones."""
    return ("default", *ENCODERS, *CONV_ENCODERS, *ALIASES, *sorted(_REGISTRY))


def training_forward(
    encoder: nn.Module,
    x: torch.Tensor,
    compute_dtype: torch.dtype | None,
    rows: int | None,
    plan: tuple[torch.Tensor, ...] | None = None,
) -> torch.Tensor:
    """An encoder's training forward: its own ``training_forward`` if it has one, else a call.

    Returns the first ``rows`` rows (all when ``None``) in float32. ``plan``: the rows'
    entries of the encoder's ``route_table`` (routed encoders only).
    """
    own = getattr(encoder, "training_forward", None)
    if plan is not None:
        return own(x, compute_dtype, rows, plan)
    if own is not None:
        return own(x, compute_dtype, rows)
    if compute_dtype is None:
        return encoder(x)
    with torch.autocast(x.device.type, dtype=compute_dtype):
        return encoder(x)[:rows].float()


def build_encoder(
    name: str,
    n_in: int,
    n_out: int,
    input_shape: Sequence[int] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build an encoder by name: ``"default"``, built-in, alias or registered.

    ``input_shape``: the shape of one sample as the encoder reads it (``(H, W)`` or
    ``(C, H, W)`` for images; ``None`` means ``(n_in,)``). Convolutional and registered encoders
    need it; the MLPs read flat rows whatever it is.
    """
    name = canonical_name(name)
    if name == "default":
        name = DEFAULT_ENCODER
    shape = (n_in,) if input_shape is None else tuple(int(d) for d in input_shape)
    if math.prod(shape) != n_in:
        raise ValueError(f"input_shape {shape} does not hold {n_in} inputs.")
    if name in _REGISTRY:
        return RegisteredEncoder(name, shape, n_out, kwargs)
    if name not in ENCODERS and name not in CONV_ENCODERS:
        raise ValueError(
            f"encoder must be one of {encoder_names()} or a torch.nn.Module, got {name!r}."
        )
    conv = name in CONV_ENCODERS
    allowed = {"hidden", "channels", "norm"} if conv else {"hidden"}
    if name == "mlp_routed":
        allowed = {"hidden", "experts", "blend", "margin", "gate"}
    unknown = set(kwargs) - allowed
    if unknown:
        raise ValueError(
            f"encoder_kwargs has unknown keys {sorted(unknown)}; allowed for {name!r}: "
            f"{sorted(allowed)}."
        )
    if name == "mlp_routed":
        from ._routed import BLEND, DEFAULT_EXPERTS, ROUTED_HIDDEN, RoutedMLP

        hidden = _widths(kwargs, "hidden", ROUTED_HIDDEN)
        experts = check_int(
            kwargs.get("experts", DEFAULT_EXPERTS),
            "encoder_kwargs['experts']",
            min=1,
            what="a positive integer",
        )
        blend = check_real(
            kwargs.get("blend", BLEND), "encoder_kwargs['blend']", min=0, max=1, include_max=False
        )
        # The margin is set when a fit places the centroids; a stored model passes it back.
        margin = check_real(kwargs.get("margin", 0.0), "encoder_kwargs['margin']", min=0)
        gate = kwargs.get("gate", False)
        if not isinstance(gate, bool):
            raise ValueError(f"encoder_kwargs['gate'] must be True or False, got {gate!r}.")
        return RoutedMLP(
            n_in, n_out, hidden=hidden, experts=experts, blend=blend, margin=margin, gate=gate
        )
    hidden = _widths(kwargs, "hidden", DEFAULT_CONV_HIDDEN if conv else DEFAULT_HIDDEN)
    if not conv:
        return GlassBoxMLP(
            n_in,
            n_out,
            hidden=hidden,
            norm=name in ("mlp_norm", "mlp_gate"),
            gate=name == "mlp_gate",
        )
    if len(shape) == 1:
        raise ValueError(
            f"encoder {name!r} needs images: fit it on an array (n, H, W) or (n, C, H, W), "
            f"not on rows of {n_in} features."
        )
    norm = kwargs.get("norm", False)
    if not isinstance(norm, bool):
        raise ValueError(f"encoder_kwargs['norm'] must be True or False, got {norm!r}.")
    channels = _widths(kwargs, "channels", DEFAULT_CHANNELS)
    return GlassBoxConv(shape, n_out, channels=channels, hidden=hidden, norm=norm)


def _widths(kwargs: dict[str, Any], key: str, default: Sequence[int]) -> tuple[int, ...]:
    """``kwargs[key]`` as a tuple of positive ints (layer widths or channels)."""
    value = kwargs.get(key, default)
    try:
        widths = tuple(int(h) for h in value)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"encoder_kwargs[{key!r}] must be a list of positive integers, got {value!r}."
        ) from e
    if any(h < 1 for h in widths):
        raise ValueError(f"encoder_kwargs[{key!r}] must hold positive widths, got {widths}.")
    return widths


@contextlib.contextmanager
def attribution_mode(module: nn.Module) -> Iterator[None]:
    """Freeze every normalisation scale in ``module`` while contributions are taken."""
    frozen = [m for m in module.modules() if hasattr(m, "frozen_scale")]
    before = [m.frozen_scale for m in frozen]
    for m in frozen:
        m.frozen_scale = True
    try:
        yield
    finally:
        for m, b in zip(frozen, before, strict=True):
            m.frozen_scale = b
