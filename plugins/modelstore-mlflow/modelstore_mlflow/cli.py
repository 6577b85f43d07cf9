"""``modelstore import-mlflow TRACKING_URI DST``."""

from __future__ import annotations

import click

from modelstore_core.cli import CLIError, CommandLine, common_options, pass_cmdline, report_move


@click.command("import-mlflow")
@click.argument("tracking_uri")
@click.argument("dst")
@click.option("--model", "models", multiple=True, metavar="NAME", help="Only this registered model (repeatable).")
@click.option("--logged-models", is_flag=True, help="Also the logged models (MLflow 3) that no registered version names.")
@click.option("--registry-uri", metavar="URI", help="The model registry, when it is not the tracking store.")
@click.option(
    "--artifact-root",
    "artifact_roots",
    multiple=True,
    metavar="DIR",
    help="A directory local artifacts may be read from (repeatable; default: the store's own directory).",
)
@click.option(
    "--artifacts-destination",
    metavar="DIR",
    help="Where mlflow-artifacts:/ URIs point (the tracking server's --artifacts-destination), to read its database directly.",
)
@common_options
@pass_cmdline
def import_mlflow(
    cmdline: CommandLine,
    tracking_uri: str,
    dst: str,
    models: tuple[str, ...],
    logged_models: bool,
    registry_uri: str | None,
    artifact_roots: tuple[str, ...],
    artifacts_destination: str | None,
) -> None:
    """Import the models of an MLflow registry into store DST.

    TRACKING_URI is the MLflow tracking store: sqlite:///path/to/mlflow.db, a file store
    (./mlruns), or a tracking server (http://host:5000). Every registered model becomes a domain
    and each version a version (its number kept where free), with the run's metrics, params and
    tags; aliases become states. Formats a plugin reads as they are come in as that plugin's
    flavor; pickles come in as they are and load only with trust=True. Running it again imports
    nothing twice. The MLflow store is only read (a sqlite database through a copy).
    """
    from modelstore_core import ModelStore
    from modelstore_core.cli.progress import progress

    from .importer import import_mlflow as run_import
    from .registry import MlflowImportError

    target = ModelStore(dst, timeout=cmdline.timeout)
    try:
        with progress(cmdline, "Importing", None) as callback:
            report = run_import(
                tracking_uri,
                target,
                models=list(models) or None,
                logged_models=logged_models,
                registry_uri=registry_uri,
                artifact_roots=list(artifact_roots) or None,
                artifacts_destination=artifacts_destination,
                progress=callback,
            )
    except MlflowImportError as exc:
        raise CLIError(str(exc)) from None
    finally:
        target.close()
    report_move(cmdline, report, "imported", report.notes)
