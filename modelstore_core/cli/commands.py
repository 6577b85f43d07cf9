"""Importing this module registers every command on :data:`~modelstore_core.cli.app.cli`."""

from __future__ import annotations

from . import browse, diff, experiments, lifecycle, maintain, move, plugins, signing, transfer  # noqa: F401
