"""Messages through scanpy's logging, so that ``sc.settings.verbosity`` governs them.

scanpy's levels: 0 errors, 1 warnings (its default), 2 info, 3 hints, 4 debug.
:func:`info`, :func:`hint` and :func:`warning` print through :mod:`scanpy.logging` when scanpy
has been imported, and through the standard logger ``scglassbox`` otherwise. This module never
imports scanpy itself: the AnnData-free core (the estimator, training) uses it too, and
importing scanpy costs seconds and pulls in anndata and pandas. Without scanpy, warnings still
reach stderr (Python's last-resort handler prints them) and info messages are dropped unless the
user configures :mod:`logging`.

Progress bars (:func:`progress_enabled`) show at verbosity 1 and above, i.e. by default, and
``verbosity = 0`` or ``quiet=True`` hides them.
"""

from __future__ import annotations

import logging
import sys

#: Lowest ``sc.settings.verbosity`` at which progress bars show (1: scanpy's default).
PROGRESS_VERBOSITY = 1

_std = logging.getLogger("scglassbox")


def _logg():
    """The module ``scanpy.logging``, only if scanpy is already imported."""
    if "scanpy" not in sys.modules:
        return None
    try:
        from scanpy import logging as logg
    except ImportError:  # pragma: no cover - a broken scanpy install
        return None
    return logg


def verbosity() -> int:
    """The current ``sc.settings.verbosity`` (1, its default, when scanpy is not imported)."""
    sc = sys.modules.get("scanpy")
    settings = getattr(sc, "settings", None)
    if settings is None:
        return PROGRESS_VERBOSITY
    level = settings.verbosity
    return int(getattr(level, "value", level))


def info(msg: str) -> None:
    """An info message (shown from ``sc.settings.verbosity = 2``)."""
    logg = _logg()
    if logg is None:
        _std.info(msg)
    else:
        logg.info(msg)


def hint(msg: str) -> None:
    """A hint (shown from ``sc.settings.verbosity = 3``)."""
    logg = _logg()
    if logg is None:
        _std.info(msg)
    else:
        logg.hint(msg)


def debug(msg: str) -> None:
    """A debug message (shown from ``sc.settings.verbosity = 4``)."""
    logg = _logg()
    if logg is None:
        _std.debug(msg)
    else:
        logg.debug(msg)


def warning(msg: str) -> None:
    """A warning (shown from ``sc.settings.verbosity = 1``, scanpy's default)."""
    logg = _logg()
    if logg is None:
        _std.warning(msg)
    else:
        logg.warning(msg)


def progress_enabled(quiet: bool = False) -> bool:
    """Whether to show a progress bar: not with ``quiet=True`` nor below verbosity 1."""
    return not quiet and verbosity() >= PROGRESS_VERBOSITY
