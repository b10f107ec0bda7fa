"""Shared parameter documentation, inserted into docstrings by :func:`doc_params`."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

_PARAMS = {
    "adata": """adata
    Annotated data matrix.""",
    "key": """key
    The ``key_added`` used by :func:`~scglassbox.tl.glassbox_umap` (default
    ``'glassbox_umap'``).""",
    "obs": """obs
    Cells: ``None`` (all), a boolean mask, integer positions or ``obs_names``.""",
    "copy": """copy
    Return a modified copy instead of writing into ``adata``.""",
    "quiet": """quiet
    Hide progress bars and Lightning's messages.""",
    "show": """show
    Show the plot (default: scanpy's ``settings.autoshow``).""",
    "return_fig": """return_fig
    Return the figure instead of the axes.""",
    "save": """save
    Write the figure, as scanpy's ``save=``: ``True`` writes
    ``{settings.figdir}/<plot name>.<settings.file_format_figs>``, a string is appended to
    that name (``'_tcells.pdf'``), a :class:`~pathlib.Path` is the exact file.""",
    "ax": """ax
    Draw into this axes (a plot of one panel only).""",
    "plot_returns": """The axes (a list for several panels) when ``show=False``, the figure when
``return_fig=True``, else ``None``.""",
    "ranked": """groupby
    The ``groupby`` used for the ranking.
group
    One or more groups (default: all).""",
    "view": """view
    What to summarise per cell and gene: ``'l2'`` (norm over embedding dimensions),
    ``'normed_l2'`` (that, divided per cell by its sum over genes) or ``'dim1'``,
    ``'dim2'``, ... (the signed contribution to that dimension).""",
}


# The parameters every matplotlib plot shares, in scanpy's order (as its doc_show_save_ax).
_PARAMS["show_ax"] = "\n".join(_PARAMS[k] for k in ("show", "ax", "return_fig", "save"))
_PARAMS["show_save"] = "\n".join(_PARAMS[k] for k in ("show", "return_fig", "save"))
_PARAMS["panels"] = "ncols\n    Panels per row.\n" + _PARAMS["show_ax"]

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def doc_params(func: F) -> F:
    """Replace ``{name}`` placeholders in ``func.__doc__`` with the shared texts.

    An unknown placeholder raises at import, so a typo cannot reach the rendered docs.
    """
    if func.__doc__:

        def fill(match: re.Match) -> str:
            name = match.group(1)
            if name not in _PARAMS:
                raise KeyError(
                    f"{func.__qualname__}'s docstring has an unknown placeholder {{{name}}}; "
                    f"known: {sorted(_PARAMS)}."
                )
            return _PARAMS[name].replace("\n", "\n    ")

        func.__doc__ = _PLACEHOLDER.sub(fill, func.__doc__)
    return func
