"""modelstore-mlflow: import an MLflow model registry into a store, ``modelstore import-mlflow``.

Loading the plugin never imports MLflow: it loads when the command runs, or when
:func:`import_mlflow` is called.
"""

from __future__ import annotations

from modelstore_core.plugin_api import hookimpl

from .importer import import_mlflow

__all__ = ["import_mlflow", "modelstore_cli_commands"]


@hookimpl
def modelstore_cli_commands() -> list:
    from .cli import import_mlflow as command

    return [command]
