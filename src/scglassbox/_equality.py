"""``==`` between estimators: the same recipe and, once fitted, the same trained model.

As the reference package's semantic equality: what is compared is the model and the parameters
that produce it, not the run-time envelope (verbosity, data-loader workers, checkpoints, extra
callbacks, the device). Values are compared exactly (bitwise for weights), with no tolerance.

- Unfitted estimators: their constructor parameters, synonyms resolved (``encoder_name`` and
  ``encoder``, aliases such as ``"default_conv"``, ``n_epochs``/``epochs``,
  ``learning_rate``/``lr``), without :data:`IGNORED_FOR_EQ`.
- Fitted estimators: their model blocks (``to_dict``: the stored parameters with the values
  the fit used, the architecture, every weight, the centring mean, the PCA loadings, the image
  shape) and their feature names. So the comparison survives ``save``/``load`` and
  ``from_dict``, which restore exactly those. The loss history is a record of training, not
  part of the model, and is not compared.
- An unfitted estimator never equals a fitted one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from torch import nn

from ._encoder import canonical_name

if TYPE_CHECKING:
    from ._estimator import GlassBoxUMAP

#: Parameters that ``==`` ignores: run-time settings that do not change the model (as in the
#: reference package, whose four are the first four; ``verbose`` and ``tqdm_kwds`` are
#: umap-learn's spellings of ``quiet``).
IGNORED_FOR_EQ = frozenset(
    {"quiet", "num_workers", "checkpoint_dir", "extra_callbacks", "verbose", "tqdm_kwds"}
)


def estimators_equal(a: Any, b: Any) -> bool:
    """Whether two ``GlassBoxUMAP`` estimators describe the same model (see the module)."""
    if type(a) is not type(b):
        return False
    fitted_a, fitted_b = a.__sklearn_is_fitted__(), b.__sklearn_is_fitted__()
    if fitted_a != fitted_b:
        return False
    if not fitted_a:
        return _same(_recipe(a), _recipe(b))
    if not _same(_names(a), _names(b)):
        return False
    block_a, block_b = a.to_dict(), b.to_dict()
    for block in (block_a, block_b):
        block.pop("loss_history", None)
    return _same(block_a, block_b)


def _names(est: GlassBoxUMAP) -> object:
    names = getattr(est, "feature_names_in_", None)
    return None if names is None else np.asarray(names, dtype=str)


def _recipe(est: GlassBoxUMAP) -> dict[str, Any]:
    """Constructor parameters with synonyms resolved, without the ignored ones."""
    params = {k: v for k, v in est.get_params(deep=False).items() if k not in IGNORED_FOR_EQ}
    alias = canonical_name(params.pop("encoder_name"))
    encoder = canonical_name(params["encoder"])
    if alias is not None and alias != "default":
        encoder = alias
    params["encoder"] = encoder
    n_epochs, learning_rate = params.pop("n_epochs"), params.pop("learning_rate")
    if n_epochs is not None:
        params["epochs"] = n_epochs
    if learning_rate is not None:
        params["lr"] = learning_rate
    return params


def _same(x: object, y: object) -> bool:
    """Exact, recursive equality of parameter values and model blocks."""
    if isinstance(x, dict) or isinstance(y, dict):
        return (
            isinstance(x, dict)
            and isinstance(y, dict)
            and x.keys() == y.keys()
            and all(_same(x[k], y[k]) for k in x)
        )
    if isinstance(x, nn.Module) or isinstance(y, nn.Module):
        if x is y:
            return True
        if type(x) is not type(y):
            return False
        sx, sy = x.state_dict(), y.state_dict()
        return _same(
            {k: v.detach().cpu().numpy() for k, v in sx.items()},
            {k: v.detach().cpu().numpy() for k, v in sy.items()},
        )
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        x, y = np.asarray(x), np.asarray(y)
        return x.shape == y.shape and x.dtype == y.dtype and bool(np.array_equal(x, y))
    if isinstance(x, list | tuple) or isinstance(y, list | tuple):
        return (
            isinstance(x, list | tuple)
            and isinstance(y, list | tuple)
            and len(x) == len(y)
            and all(_same(u, v) for u, v in zip(x, y, strict=True))
        )
    if x is y:
        return True
    try:
        return bool(x == y)
    except (TypeError, ValueError):
        return False
