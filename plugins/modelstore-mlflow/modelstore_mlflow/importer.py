"""Importing an MLflow model registry into a store: :func:`import_mlflow`.

Every registered model becomes a domain of the same name, and each of its versions a version,
oldest first, under its MLflow number where that number is free in the domain (else the next free
one). A version records the registered model, version, run id, source and logged model id as
tags (``mlflow.*``), the run's metrics (the latest value of each), params and tags, the input
signature (the MLmodel's, else its input example's) and the environment (``requirements.txt``,
``python_env.yaml``/``conda.yaml``), with everything MLflow said about it under
``metadata["mlflow"]``. Its files are fetched through :mod:`.artifacts` (checked paths, no links,
capped sizes) and mapped by :mod:`.mapping`. Aliases (``@champion``) become states, and so does a
legacy stage (``Production``...) that holds exactly one version (as ``production``).

A version that cannot be imported is reported and left out; the others come in. A re-run imports
nothing twice: it skips the versions that a version of the domain records (``metadata["mlflow"]
["key"]``), reading each record of the domain once, and an import killed between claiming a
number and writing its record takes its claim up again. Run one import at a time per target.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelstore_core.importing import ImportedFiles, ImportReport, imported_versions
from modelstore_core.names import check_file_path, check_name, check_tags
from modelstore_core.plugin_api import InvalidNameError, ModelStoreError, UsageError
from modelstore_core.progress import Progress, ProgressCallback

from . import artifacts, describe, mapping
from .registry import MlflowImportError, MlflowModelVersion, MlflowRegistry

if TYPE_CHECKING:
    from modelstore_core import ModelStore

#: MLflow's legacy stages that become states (lower case) when they hold exactly one version.
STAGES = ("Production", "Staging", "Archived")


def import_mlflow(
    tracking_uri: str,
    target: ModelStore,
    *,
    models: list[str] | None = None,
    logged_models: bool = False,
    registry_uri: str | None = None,
    artifact_roots: list[str | Path] | None = None,
    artifacts_destination: str | Path | None = None,
    progress: ProgressCallback | None = None,
    max_files: int = artifacts.MAX_FILES,
    max_bytes: int = artifacts.MAX_BYTES,
) -> ImportReport:
    """Import the registered models (only ``models``, by name, when given) of the MLflow store at
    ``tracking_uri`` into ``target``; with ``logged_models``, also the logged models (MLflow 3) that
    no version registers, each as the next version of a domain named after it.

    :param artifact_roots: directories that local artifact locations must lie in (default: the
        store's own directory, for ``sqlite:///`` the database's directory); anything outside is
        refused, so that a store's rows cannot make the import read other files of this machine.
    :param artifacts_destination: the local directory ``mlflow-artifacts:/`` URIs name (the
        tracking server's ``--artifacts-destination``), for reading a server's database directly.
    :param max_files: at most this many files per model; ``max_bytes``: at most this many bytes.
    """
    report = ImportReport()
    with MlflowRegistry(tracking_uri, registry_uri, scratch=target.cache.scratch) as registry:
        roots = [Path(r).resolve() for r in artifact_roots or []]
        if not roots and registry.store_directory is not None:
            roots = [registry.store_directory]
        destination = Path(artifacts_destination).resolve() if artifacts_destination is not None else None
        if destination is not None:
            roots.append(destination)
        context = _Context(registry, target, report, roots, destination, artifacts.Limits(max_files, max_bytes), Progress(progress, None))
        found = registry.registered_models()
        names = [name for name, _ in found]
        if models is not None:
            missing = [m for m in models if m not in names]
            if missing:
                raise UsageError(
                    f"the MLflow registry {tracking_uri} has no registered model {missing[0]!r} (it has: {', '.join(names) or 'none'})"
                )
        registered_ids: set[str] = set()
        for name, aliases in found:
            wanted = models is None or name in models
            if not wanted and not logged_models:
                continue
            versions = _listed(registry, name, aliases, report)
            registered_ids.update(v.model_id for v in versions if v.model_id)
            if wanted:
                _import_domain(context, name, versions, aliases)
        if logged_models:
            by_name: dict[str, list[MlflowModelVersion]] = {}
            for model in registry.logged_models(registered_ids):
                by_name.setdefault(model.name, []).append(model)
            for name, versions in by_name.items():
                _import_domain(context, name, versions, {})
    return report


def _listed(registry: MlflowRegistry, name: str, aliases: dict[str, int], report: ImportReport) -> list[MlflowModelVersion]:
    from mlflow.exceptions import MlflowException

    try:
        return registry.versions(name, aliases)
    except MlflowException as exc:
        report.problems.append(f"MLflow model {name!r} not imported: MLflow cannot list its versions ({str(exc).splitlines()[0][:200]})")
        return []


class _Context:
    def __init__(self, registry, target, report, roots, destination, limits, counter):
        self.registry, self.target, self.report = registry, target, report
        self.roots, self.destination, self.limits, self.counter = roots, destination, limits, counter


def _mlflow_key(document: dict[str, Any]) -> str | None:
    mlflow = document.get("mlflow")
    return mlflow.get("key") if isinstance(mlflow, dict) else None


def _import_domain(context: _Context, name: str, versions: list[MlflowModelVersion], aliases: dict[str, int]) -> None:
    report = context.report
    try:
        domain = check_name(name, "domain name")
    except InvalidNameError as exc:
        report.problems.append(f"MLflow model {name!r} not imported: {exc}")
        return
    if not versions:
        return
    done = imported_versions(context.target, domain, _mlflow_key)
    numbers: dict[int, int] = {}  # MLflow version -> version here
    for version in versions:
        where = _where(version)
        if version.key in done:
            report.skipped.append(f"{domain}:{done[version.key]}")
            if version.version is not None:
                numbers[version.version] = done[version.key]
            continue
        try:
            made = _import_version(context, domain, version)
        except (MlflowImportError, ModelStoreError, OSError) as exc:
            report.problems.append(f"{where} not imported: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - MLflow's own errors (MlflowException...) for one version
            if type(exc).__module__.split(".")[0] != "mlflow":
                raise
            report.problems.append(f"{where} not imported: MLflow: {str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}")
            continue
        if version.version is not None:
            numbers[version.version] = made
    _map_states(context, domain, versions, numbers)


def _where(version: MlflowModelVersion) -> str:
    if version.version is None:
        return f"MLflow logged model {version.name!r} ({version.model_id})"
    return f"MLflow model {version.name!r} version {version.version}"


def _import_version(context: _Context, domain: str, version: MlflowModelVersion) -> int:
    registry, report = context.registry, context.report
    location, model_params, model_metrics = registry.logged_model_details(version) if version.model_id else (None, {}, {})
    run = registry.run(version.run_id) if version.run_id else None
    uri = registry.artifact_uri(version, location, run)
    with context.target.cache.scratch("mlflow-") as tmp:  # a killed import's files: reclaimed by the next
        fetched = tmp / "files"
        names = artifacts.fetch(
            uri,
            fetched,
            roots=context.roots,
            artifacts_destination=context.destination,
            limits=context.limits,
            check_name=check_file_path,
            advance=context.counter.advance,
            served=registry.tracking_uri.startswith(("http://", "https://")),
        )
        mlmodel = mapping.read_mlmodel(fetched, names)
        mapped = mapping.map_model(mlmodel, fetched, names)
        recorded, metadata, notes = _describe(version, run, uri, mlmodel, mapped, fetched, names, model_params, model_metrics)
        model_paths = {stored: fetched / name for stored, name in mapped.model_files.items()}
        extras_dir = Path(tmp) / "extras"  # stored under extras/ with the names they had
        for name in mapped.extras:
            (extras_dir / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(fetched / name, extras_dir / name)
        extras = sorted(extras_dir.iterdir()) if mapped.extras else None
        files = ImportedFiles(list(model_paths.values()), mapped.flavor, model_paths)
        try:
            made = context.target.uploader.upload(
                domain,
                files,
                extras,
                recorded,
                metadata=metadata,
                number=version.version,
                claim_for=f"mlflow:{version.key}",
            )
        except InvalidNameError as exc:  # names that could not be stored side by side, an odd tag...
            raise MlflowImportError(str(exc)) from None
    report.copied.append(f"{domain}:{made.version}")
    report.bytes_moved += made.bytes_written or 0
    report.objects += len({f.sha256 for f in made.files})
    kept = "" if version.version is None or made.version == version.version else f" (number {version.version} was taken here)"
    report.notes.append(f"{domain}:{made.version}{kept} ({_where(version)}): {mapped.became}: {'; '.join([mapped.note, *notes])}")
    return made.version


def _describe(version, run, uri, mlmodel, mapped, directory, names, model_params, model_metrics):
    """The recorded fields, the record's metadata and the notes of one version."""
    notes: list[str] = []
    # the run's latest values; a logged model's own (a snapshot when it was logged) where the run has none
    run_metrics = {**model_metrics, **(run.metrics if run else {})}
    run_params = {**model_params, **(run.params if run else {})}
    user_tags = {k: v for k, v in (run.tags if run else {}).items() if not k.startswith("mlflow.")}
    user_tags.update({k: v for k, v in version.tags.items() if not k.startswith("mlflow.")})
    metrics, metrics_out = describe.recorded_values("metrics", run_metrics)
    params, params_out = describe.recorded_values("params", run_params)
    tags, tags_out = describe.recorded_values("tags", user_tags)
    own = {
        "mlflow.registered_model": version.name if version.version is not None else None,
        "mlflow.version": version.version,
        "mlflow.run_id": version.run_id,
        "mlflow.source": version.source,
        "mlflow.model_id": version.model_id,
    }
    own_tags, own_out = describe.recorded_values("tags", {k: v for k, v in own.items() if v is not None})
    tags.update(own_tags)
    for kind, out in (("metrics", metrics_out), ("params", params_out), ("tags", tags_out + own_out)):
        if out:
            shown = ", ".join(repr(n[:40]) for n in out[:5]) + (f" and {len(out) - 5} more" if len(out) > 5 else "")
            notes.append(f"{len(out)} {kind} kept only in metadata['mlflow'] (their names or values are not recordable here: {shown})")
    signature, why = describe.signature(mlmodel, directory, names)
    if why:
        notes.append(why)
    framework = describe.FRAMEWORKS.get(mapped.flavor.name, [])
    environment, unpinned, problems = describe.environment(directory, names, framework)
    notes += problems
    recorded: dict[str, Any] = {"tags": check_tags(tags), "metrics": metrics, "params": params}
    if signature is not None:
        recorded["signature"] = signature
    flavors = mlmodel.get("flavors", {}) if mlmodel else {}
    info = {
        "key": version.key,
        "registered_model": version.name if version.version is not None else None,
        "logged_model": version.name if version.version is None else None,
        "version": version.version,
        "model_id": version.model_id,
        "run_id": version.run_id,
        "source": version.source,
        "artifact_uri": uri,
        "aliases": version.aliases,
        "stage": version.stage,
        "description": version.description,
        "created": _time(version.created),
        "tags": version.tags,
        "mlflow_version": (mlmodel or {}).get("mlflow_version"),
        "flavors": {str(k): _flavor_summary(v) for k, v in flavors.items()},
        "became": mapped.became,
        "note": mapped.note,
        "unpinned_requirements": unpinned,
        "run": None
        if run is None
        else {
            "name": run.name,
            "experiment_id": run.experiment_id,
            "status": run.status,
            "started": _time(run.start_time),
            "tags": run.tags,
            "metrics": run_metrics,
            "params": run_params,
        },
    }
    metadata = {"mlflow": describe.mlflow_json(info), "git": None, **environment}
    return recorded, metadata, notes


def _flavor_summary(conf: Any) -> Any:
    """A flavor's settings from MLmodel, scalars only (they say how MLflow would load it)."""
    if not isinstance(conf, dict):
        return None
    return {str(k): v for k, v in list(conf.items())[:50] if isinstance(v, (str, int, float, bool)) or v is None}


def _time(milliseconds: Any) -> str | None:
    if not isinstance(milliseconds, int) or isinstance(milliseconds, bool):
        return None
    try:
        return datetime.fromtimestamp(milliseconds / 1000, tz=timezone.utc).isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def _map_states(context: _Context, domain: str, versions: list[MlflowModelVersion], numbers: dict[int, int]) -> None:
    """Aliases become states; a legacy stage holding exactly one version becomes its lower-case state."""
    report, target = context.report, context.target
    if not numbers:
        return
    wanted: dict[str, int] = {}
    for version in versions:
        for alias in version.aliases:
            if version.version in numbers:
                wanted[alias] = numbers[version.version]
    for stage in STAGES:
        holding = [v for v in versions if v.stage == stage and v.version in numbers]
        state = stage.lower()
        if not holding:
            continue
        if state in wanted:
            report.notes.append(f"MLflow stage {stage!r} of {domain!r} not mapped: an alias {state!r} names version {wanted[state]}")
            continue
        if len(holding) > 1:
            shown = ", ".join(str(numbers[v.version]) for v in holding)
            report.notes.append(
                f"MLflow stage {stage!r} of {domain!r} holds {len(holding)} versions ({shown}); a state here names one"
                f" version, so it was not mapped: `modelstore state set {domain} VERSION {state}` picks one"
            )
            continue
        wanted[state] = numbers[holding[0].version]
    if not wanted:
        return
    current = target.states(domain)
    for state, number in sorted(wanted.items()):
        try:
            check_name(state, "state name")
        except InvalidNameError as exc:
            report.notes.append(f"MLflow alias {state!r} of {domain!r} not mapped: {exc}")
            continue
        if current.get(state) != number:
            target.set_state(domain, number, state)
            report.states.append(f"{domain}@{state}={number}")
