"""Warnings that point at the user's line, however deep in the package they are raised."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import sklearn.utils._set_output as _set_output

#: Frames that are not the user's: the package, and the wrapper scikit-learn puts around
#: ``fit_transform`` / ``transform`` (set_output).
_SKIP = (str(Path(__file__).resolve().parent), str(Path(_set_output.__file__).resolve()))


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """:func:`warnings.warn` attributed to the first caller outside scglassbox.

    A fixed ``stacklevel`` is right for one call path only (``fit`` and ``fit_transform``
    reach the same check at different depths); this walks the stack instead.
    """
    frame, level = sys._getframe(1), 2
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(_SKIP):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
