"""Checks of single values (counts, step sizes, switches, seeds), with one message style.

Every check returns the value as a plain Python object and raises ``error`` (by default
scikit-learn's :class:`~sklearn.utils._param_validation.InvalidParameterError`, a ValueError
and a TypeError, what scikit-learn raises for a bad parameter) with the message
``"{name} must be {what}, got {value!r}."``, where ``name`` is what the user wrote
(``n_pcs``, ``--seed``, ``model field 'format_version'``).

The ranges are scikit-learn's :class:`~sklearn.utils._param_validation.Interval`, which
refuses NaN, and infinity at an open bound. What it does not do is refuse ``True`` and
``False``, which are Integral and Real in Python: here a bool is never a number, since
``n_components=True`` is a slip, not a 1. (For the same reason ``GlassBoxUMAP`` does not
declare scikit-learn's ``_parameter_constraints``: see :func:`scglassbox._params.check_params`.)
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions

__all__ = [
    "InvalidParameterError",
    "check_dict",
    "check_flag",
    "check_int",
    "check_number",
    "check_option",
    "check_real",
    "check_seed",
    "is_integer",
    "scalar",
]


def check_number(
    value: object,
    name: str,
    *,
    integer: bool = False,
    min: float | None = None,
    max: float | None = None,
    include_min: bool = True,
    include_max: bool = True,
    optional: bool = False,
    error: type[Exception] = InvalidParameterError,
    what: str | None = None,
) -> int | float | None:
    """``value`` as a finite number between ``min`` and ``max`` (never a bool).

    Use it as :func:`check_int` (``integer=True``: an ``int``, numpy integers too) or
    :func:`check_real` (a ``float``).

    Parameters
    ----------
    value
        The value to check.
    name
        The name in the message, as the user passed it.
    integer
        Whether only integers are accepted (and an ``int`` returned).
    min, max
        Bounds; ``None`` for none. NaN and infinity are refused whatever the bounds.
    include_min, include_max
        Whether a bound itself is accepted.
    optional
        Whether ``None`` is accepted (and returned).
    error
        The exception class raised (a subclass of ValueError).
    what
        What the message says is expected, when the range in numbers would read worse
        (seeds: ``'an int in [0, 2**32 - 1]'``; ``None or`` comes first then).

    Returns
    -------
    ``int(value)`` or ``float(value)``, or ``None``.
    """
    if optional and value is None:
        return None
    kind = Integral if integer else Real
    closed = {(True, True): "both", (True, False): "left", (False, True): "right"}
    lo, hi = min is not None and include_min, max is not None and include_max
    if not _is_number(value, kind) or value not in Interval(
        kind, min, max, closed=closed.get((lo, hi), "neither")
    ):
        said = what
        if said is None:
            bounds = _range(min, max, include_min, include_max)
            said = "an integer" if integer else "a number" if max is not None else "a finite number"
            said = f"{said} {bounds}".rstrip()
        raise error(_message(name, said, value, optional, none_first=what is not None))
    return int(value) if integer else float(value)


#: ``check_int(value, name, *, min=, max=, optional=, error=)``: an ``int`` in ``[min, max]``.
check_int = partial(check_number, integer=True)
#: ``check_real(value, name, *, min=, max=, include_min=, include_max=, optional=, error=)``.
check_real = partial(check_number, integer=False)


def check_flag(
    value: object,
    name: str,
    *,
    optional: bool = False,
    error: type[Exception] = InvalidParameterError,
) -> bool | None:
    """``value`` as a ``bool``: ``True`` or ``False`` (numpy's too), or ``None`` if optional."""
    if optional and value is None:
        return None
    if not isinstance(value, bool | np.bool_):
        what = "True, False or None" if optional else "True or False"
        raise error(_message(name, what, value, False))
    return bool(value)


#: ``check_seed(value, name)``: a seed as numpy and scikit-learn take them, one rule on every
#: path: an ``int`` in ``[0, 2**32 - 1]``, or ``None`` (unless ``optional=False``).
check_seed = partial(
    check_int, min=0, max=2**32 - 1, optional=True, what="an int in [0, 2**32 - 1]"
)


def check_option(
    value: object,
    name: str,
    options: Iterable[str],
    *,
    error: type[Exception] = InvalidParameterError,
) -> str:
    """``value``, one of the strings ``options``."""
    options = tuple(options)
    if not StrOptions(set(options)).is_satisfied_by(value):
        raise error(_message(name, f"one of {options}", value, False))
    return value


def check_dict(
    value: object,
    name: str,
    *,
    error: type[Exception] = InvalidParameterError,
) -> dict | None:
    """``value``, a dict or ``None`` (the message names its type: it may be large)."""
    if value is not None and not isinstance(value, dict):
        raise error(f"{name} must be a dict or None, got {type(value).__name__}.")
    return value


def scalar(value: object) -> object:
    """Undo the 0-d arrays and numpy scalars that h5ad/zarr hand back for plain values."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    return value


def is_integer(value: object) -> bool:
    """Whether ``value`` is a Python or numpy integer, and not a bool."""
    return _is_number(value, Integral)


def _is_number(value: object, kind: type) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def _range(lo: float | None, hi: float | None, include_lo: bool, include_hi: bool) -> str:
    if lo is not None and hi is not None:
        return f"in {'[' if include_lo else '('}{lo}, {hi}{']' if include_hi else ')'}"
    if lo is not None:
        return f"{'>=' if include_lo else '>'} {lo}"
    if hi is not None:
        return f"{'<=' if include_hi else '<'} {hi}"
    return ""


def _message(name: str, what: str, value: object, optional: bool, none_first: bool = False) -> str:
    if optional:
        what = f"None or {what}" if none_first else f"{what} or None"
    return f"{name} must be {what}, got {value!r}."
