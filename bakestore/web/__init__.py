"""The thin web UI behind ``bakestore ui``: route handlers and form logic over the bakestore API.

Datasette serves it (routes registered by :mod:`bakestore.datasette_plugin`); the templates and
static files ship as the ``bakestore.ui`` package (the repository's top-level ``ui/`` folder).
Every action calls the bakestore API (``Store``, ``restore``, ``exports``, ``audit``,
``forensics``); forms are built from the registry; validation messages are the store's.
"""

from __future__ import annotations

from .server import build_datasette, serve

__all__ = ["build_datasette", "serve"]
