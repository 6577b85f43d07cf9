"""The ``modelstore`` command line (also ``python -m modelstore_core``).

::

    modelstore ls [DOMAIN]                       domains, or a domain's versions
    modelstore info DOMAIN [VERSION|--state S]   a version's full metadata
    modelstore upload DOMAIN FILE... [--tag k=v] [--extra FILE]
    modelstore download DOMAIN [VERSION|--state S] [-o DIR]
    modelstore state set|rm|ls ...               named pointers to versions
    modelstore delete DOMAIN VERSION [--yes]
    modelstore verify [DOMAIN [VERSION]] [--signatures]   re-hash stored files, check signatures (exit 1 on a problem)
    modelstore gc [--apply] [--grace SECONDS]    reclaim leftovers (dry run by default)
    modelstore diff DOMAIN V1 V2                 files, dependencies, git, hyperparameters, tags
    modelstore plugins                           installed plugins, hooks, schemes, flavors, failures
    modelstore cache info|clear [--yes]          the local cache of loaded files
    modelstore keys create NAME | keys ls        signing keys on this machine
    modelstore sign DOMAIN [VERSION] [--key K]   add a signature to a version
    modelstore copy SRC DST [DOMAIN[:VERSION|@STATE]]...   copy versions between stores (numbers kept)
    modelstore mirror SRC DST [--state S] [--delete]       keep a read-only store in step
    modelstore import-legacy LEGACY_URL DST      import a store of the original modelstore 0.0.x
    modelstore push DOMAIN[:VERSION|@STATE] REF  send a version outside any store (oci://registry/repo[:tag])
    modelstore pull REF [DOMAIN]                 commit what REF holds as a version
    modelstore import-mlflow TRACKING_URI DST    import an MLflow registry (plugin modelstore-mlflow)

Every command takes ``--store URL`` (default ``$MODELSTORE_URL``, else the per-user store),
``--json`` and ``--debug``. Tables on a terminal, tab-separated lines when piped, JSON with
``--json``. Errors are one line on stderr and exit status 1 (2 for usage errors).
"""

from __future__ import annotations

from ..display import human_size
from . import commands  # noqa: F401 - registers the commands on `cli`
from .app import cli, common_options, main
from .context import CLIError, CommandLine, pass_cmdline
from .move import report_move

#: What a plugin's commands (``modelstore_cli_commands``) use: the shared options, the run's
#: :class:`CommandLine` (its store, how to print), the one-line error, size formatting, and the
#: summary of a copy or an import (``report_move``).
__all__ = ["CLIError", "CommandLine", "cli", "common_options", "human_size", "main", "pass_cmdline", "report_move"]
