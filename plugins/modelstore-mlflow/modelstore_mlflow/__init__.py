"""modelstore-mlflow: import an MLflow model registry into a store, ``modelstore import-mlflow``.

This module holds only the hook implementation; loading plugins never imports MLflow (it loads
when the command runs, or when :func:`modelstore_mlflow.importer.import_mlflow` is called).
"""

from __future__ import annotations

from modelstore_core.plugin_api import hookimpl


@hookimpl
def modelstore_cli_commands() -> list:
    from .cli import import_mlflow

    return [import_mlflow]
