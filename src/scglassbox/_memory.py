"""Refuse an allocation that cannot fit, before anything is computed or written."""

from __future__ import annotations

import os

#: Refuse an array larger than this share of the memory available now: the rest is for the
#: chunk being computed, the caller's data and the operating system.
MAX_SHARE = 0.8


def available_bytes() -> int | None:
    """Memory available to this process now (``MemAvailable`` on Linux), or ``None``."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(nbytes: int, what: str, alternatives: str) -> None:
    """Raise :class:`MemoryError` naming cheaper options when ``nbytes`` would not fit."""
    avail = available_bytes()
    if avail is not None and nbytes > MAX_SHARE * avail:
        raise MemoryError(
            f"{what} would take {nbytes / 2**30:.1f} GiB, but only {avail / 2**30:.1f} GiB "
            f"of memory is available. Nothing was computed or changed. Cheaper: {alternatives}."
        )
