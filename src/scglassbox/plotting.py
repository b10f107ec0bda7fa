"""The reference package's plotting names, for code written against ``glass_box_umap``.

``from glass_box_umap.plotting import output_notebook, plot_embedding, show`` becomes
``from scglassbox.plotting import output_notebook, plot_embedding, show`` and the rest of such
code runs unchanged::

    output_notebook(hide_banner=True)
    show(plot_embedding(Z=emb, contributions=contrib, group_names=target,
                        feature_names=wine.columns, feature_values=X))

:func:`plot_embedding` is :func:`scglassbox.pl.explore` on plain arrays; with AnnData, use
``gb.pl.explore(adata)`` directly. Needs bokeh (``pip install 'scglassbox[interactive]'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from bokeh.models import LayoutDOM

__all__ = ["output_notebook", "plot_embedding", "show"]


def output_notebook(*, hide_banner: bool = False, **kwargs: Any) -> None:
    """Display Bokeh output inline in the notebook (:func:`bokeh.io.output_notebook`).

    Parameters
    ----------
    hide_banner
        Do not print BokehJS's loading banner.
    **kwargs
        Passed on to :func:`bokeh.io.output_notebook`.
    """
    from .pl._explore import _bokeh

    _bokeh()
    from bokeh.io import output_notebook as _output_notebook

    _output_notebook(hide_banner=hide_banner, **kwargs)


def show(layout: LayoutDOM, **kwargs: Any) -> None:
    """Display a layout (:func:`bokeh.io.show`): inline after :func:`output_notebook`.

    Parameters
    ----------
    layout
        What :func:`plot_embedding` returned.
    **kwargs
        Passed on to :func:`bokeh.io.show`.
    """
    from .pl._explore import _bokeh

    _bokeh()
    from bokeh.io import show as _show

    _show(layout, **kwargs)


def plot_embedding(
    Z: np.ndarray,
    contributions: np.ndarray,
    group_names: Sequence | None = None,
    feature_names: Sequence[str] | None = None,
    feature_values: np.ndarray | None = None,
    **kwargs: Any,
) -> LayoutDOM:
    """The embedding linked to a bar chart of feature contributions (a Bokeh layout).

    The same explorer as :func:`scglassbox.pl.explore`, on arrays. It is returned, not
    displayed: pass it to :func:`show`, or write it to a file with
    :func:`scglassbox.pl.save_html`.

    Parameters
    ----------
    Z
        ``(n_samples, n_dims)`` embedding.
    contributions
        ``(n_samples, n_dims, n_features)`` contributions, as
        :meth:`~scglassbox.GlassBoxUMAP.compute_contributions` returns them.
    group_names
        A group label per sample (colours of *Group*).
    feature_names
        Names of the features (default ``'feature 0'``, ...).
    feature_values
        ``(n_samples, n_features)`` feature values shown in the hover text.
    **kwargs
        Further options of :func:`scglassbox.pl.explore` (``n_genes``, ``n_bars``,
        ``max_cells``, ``width``, ...).

    Returns
    -------
    A Bokeh layout.

    Examples
    --------
    >>> from scglassbox.plotting import output_notebook, plot_embedding, show
    >>> output_notebook(hide_banner=True)  # doctest: +SKIP
    >>> show(plot_embedding(Z=emb, contributions=contrib, group_names=y))  # doctest: +SKIP
    """
    from .pl._explore import explore

    if feature_names is not None:
        feature_names = [str(f) for f in feature_names]  # e.g. a pandas Index of columns
    return explore(
        None,
        embedding=Z,
        contributions=contributions,
        feature_names=feature_names,
        labels=group_names,
        feature_values=feature_values,
        show=False,
        **kwargs,
    )
