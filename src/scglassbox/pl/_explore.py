"""Placeholder."""


def explore(adata, **kwargs):  # noqa: D103
    raise NotImplementedError


def save_html(layout, path, **kwargs):  # noqa: D103
    raise NotImplementedError
