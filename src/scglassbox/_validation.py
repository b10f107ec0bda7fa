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
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions

__all__ = [
    "InvalidParameterError",
    "check_dict",
    "check_flag",
    "check_int",
    "check_option",
    "check_real",
    "check_seed",
    "is_integer",
]

#: Seeds as numpy and scikit-learn take them: one rule on every path.
SEEDS = Interval(Integral, 0, 2**32 - 1, closed="both")


def check_int(
    value: object,
    name: str,
    *,
    min: int | None = None,
    max: int | None = None,
    optional: bool = False,
    error: type[Exception] = InvalidParameterError,
) -> int | None:
    """``value`` as an ``int`` in ``[min, max]`` (numpy integers too, never a bool).

    Parameters
    ----------
    value
        The value to check.
    name
        The name in the message, as the user passed it.
    min, max
        Inclusive bounds; ``None`` for none.
    optional
        Whether ``None`` is accepted (and returned).
    error
        The exception class raised (a subclass of ValueError).

    Returns
    -------
    ``int(value)``, or ``None``.
    """
    if optional and value is None:
        return None
    closed = {(True, True): "both", (True, False): "left", (False, True): "right"}
    interval = Interval(
        Integral, min, max, closed=closed.get((min is not None, max is not None), "neither")
    )
    if not _is_number(value, Integral) or value not in interval:
        what = f"an integer {_range(min, max, True, True)}".rstrip()
        raise error(_message(name, what, value, optional))
    return int(value)


def check_real(
    value: object,
    name: str,
    *,
    min: float | None = None,
    max: float | None = None,
    include_min: bool = True,
    include_max: bool = True,
    optional: bool = False,
    error: type[Exception] = InvalidParameterError,
) -> float | None:
    """``value`` as a finite ``float`` between ``min`` and ``max`` (never a bool).

    Parameters
    ----------
    value
        The value to check.
    name
        The name in the message, as the user passed it.
    min, max
        Bounds; ``None`` for none. NaN and infinity are refused whatever the bounds.
    include_min, include_max
        Whether a bound itself is accepted.
    optional
        Whether ``None`` is accepted (and returned).
    error
        The exception class raised (a subclass of ValueError).

    Returns
    -------
    ``float(value)``, or ``None``.
    """
    if optional and value is None:
        return None
    closed = {(True, True): "both", (True, False): "left", (False, True): "right"}
    lo, hi = min is not None and include_min, max is not None and include_max
    interval = Interval(Real, min, max, closed=closed.get((lo, hi), "neither"))
    if not _is_number(value, Real) or value not in interval:
        bounds = _range(min, max, include_min, include_max)
        what = f"a number {bounds}" if max is not None else f"a finite number {bounds}".rstrip()
        raise error(_message(name, what, value, optional))
    return float(value)


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


def check_seed(
    value: object,
    name: str,
    *,
    optional: bool = True,
    error: type[Exception] = InvalidParameterError,
) -> int | None:
    """``value`` as a seed: an ``int`` in ``[0, 2**32 - 1]``, or ``None`` if optional."""
    if optional and value is None:
        return None
    if not _is_number(value, Integral) or value not in SEEDS:
        raise error(_message(name, "an int in [0, 2**32 - 1]", value, optional, none_first=True))
    return int(value)


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
