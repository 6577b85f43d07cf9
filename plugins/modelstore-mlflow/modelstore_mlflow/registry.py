"""Reading an MLflow tracking store and model registry with MLflow's own client, never writing to it.

* ``sqlite:///path``: the database is copied first (sqlite's backup, from a read-only connection)
  and MLflow opens the copy: MLflow creates missing tables and migrates a database it opens, and
  neither may happen to the user's. A copy written by an older MLflow is migrated (the copy only);
  one written by a newer MLflow is refused, naming the versions.
* ``file:`` or a directory: MLflow's file store (``mlruns/``), which must exist (MLflow would
  create one). MLflow 3 keeps it in maintenance mode: it is opened with ``MLFLOW_ALLOW_FILE_STORE``.
* anything else (``http(s)://`` tracking servers, other databases): as it is.

While a store is open, MLflow's global tracking URI is this one: MLflow's file registry opens a
client on the global URI, whose default would create ``mlflow.db`` in the working directory.
Where each version's files are is resolved here (:meth:`MlflowRegistry.artifact_uri`); reading
them is :mod:`.artifacts`'.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from modelstore_core.plugin_api import ModelStoreError


class MlflowImportError(ModelStoreError):
    """What the MLflow store holds cannot be imported as it is (the whole store, or one version)."""


#: At most this many registered models, versions or logged models are asked for at once.
PAGE = 1000


@dataclass
class MlflowModelVersion:
    """A registered model version, or a logged model that no version registers (``version`` ``None``)."""

    #: what a re-run recognises it by: ``"<name>/<version>"``, or ``"logged/<model id>"``
    key: str
    name: str
    version: int | None
    source: str
    run_id: str | None
    model_id: str | None
    aliases: list[str] = field(default_factory=list)
    stage: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    created: int | None = None  # milliseconds since the epoch, as MLflow keeps it
    #: the model's own params and metrics (MLflow 3 logged models), beside its run's
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class MlflowRun:
    run_id: str
    experiment_id: str
    artifact_uri: str
    metrics: dict[str, float]  # the latest value of each key, as MLflow reports it
    params: dict[str, str]
    tags: dict[str, str]
    name: str | None
    status: str | None
    start_time: int | None


class MlflowRegistry:
    """An open MLflow store: ``with MlflowRegistry(uri) as registry: ...``.

    :param tracking_uri: the tracking store (and, unless ``registry_uri``, the model registry).
    :param scratch: makes the private directory a sqlite database is copied into (opened read-only
        through the copy); default: a system temporary directory. An import passes its target's
        ``cache.scratch``, so that a killed import's copy is reclaimed.
    """

    def __init__(
        self,
        tracking_uri: str,
        registry_uri: str | None = None,
        scratch: Callable[[str], contextlib.AbstractContextManager[Path]] | None = None,
    ):
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.scratch = scratch or _temporary_path
        self._stack = contextlib.ExitStack()
        self.client: Any = None
        #: where the store itself lives, when it is local (a file store's directory, the database's directory)
        self.store_directory: Path | None = None

    def __enter__(self) -> MlflowRegistry:
        try:
            self.client = self._stack.enter_context(_open(self, self.tracking_uri, self.registry_uri))
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    # --- the registry ---

    def registered_models(self) -> list[tuple[str, dict[str, int]]]:
        """``[(name, {alias: version})]`` of every registered model."""
        found = []
        for model in _pages(self.client.search_registered_models):
            aliases = {str(a): int(v) for a, v in (getattr(model, "aliases", None) or {}).items()}
            found.append((model.name, aliases))
        return found

    def versions(self, name: str, aliases: dict[str, int]) -> list[MlflowModelVersion]:
        """The versions of registered model ``name``, oldest first."""
        escaped = name.replace("'", "\\'")
        found = []
        for mv in _pages(self.client.search_model_versions, filter_string=f"name='{escaped}'"):
            if mv.name != name:
                continue
            number = int(mv.version)
            stage = mv.current_stage if mv.current_stage and mv.current_stage != "None" else None
            found.append(
                MlflowModelVersion(
                    key=f"{name}/{number}",
                    name=name,
                    version=number,
                    source=mv.source or "",
                    run_id=mv.run_id or None,
                    model_id=getattr(mv, "model_id", None) or _model_id_of(mv.source),
                    aliases=sorted(a for a, v in aliases.items() if v == number),
                    stage=stage,
                    tags=dict(mv.tags or {}),
                    description=mv.description or None,
                    created=mv.creation_timestamp,
                )
            )
        return sorted(found, key=lambda v: v.version or 0)

    def logged_models(self, registered: set[str]) -> list[MlflowModelVersion]:
        """Logged models (MLflow 3) of every experiment that no version in ``registered`` (model ids) registers."""
        experiments = [e.experiment_id for e in _pages(self.client.search_experiments)]
        if not experiments:
            return []
        found = []
        for model in _pages(self.client.search_logged_models, experiment_ids=experiments):
            if model.model_id in registered:
                continue
            status = str(getattr(model.status, "value", model.status) or "")
            if status and status != "READY":
                continue  # still being written, or failed: no complete files to import
            found.append(
                MlflowModelVersion(
                    key=f"logged/{model.model_id}",
                    name=model.name,
                    version=None,
                    source=f"models:/{model.model_id}",
                    run_id=model.source_run_id or None,
                    model_id=model.model_id,
                    tags={k: v for k, v in (model.tags or {}).items()},
                    created=model.creation_timestamp,
                )
            )
        return sorted(found, key=lambda v: (v.created or 0, v.key))

    def logged_model_details(self, version: MlflowModelVersion) -> tuple[str | None, dict[str, str], dict[str, float]]:
        """``(artifact location, params, latest metrics)`` of the logged model a version registers."""
        if not version.model_id:
            return None, {}, {}
        model = self.client.get_logged_model(version.model_id)
        latest: dict[str, tuple[int, int, float]] = {}
        for metric in model.metrics or []:
            order = (metric.step or 0, metric.timestamp or 0)
            if metric.key not in latest or order >= latest[metric.key][:2]:
                latest[metric.key] = (*order, metric.value)
        return model.artifact_location, dict(model.params or {}), {k: v[2] for k, v in latest.items()}

    def run(self, run_id: str | None) -> MlflowRun | None:
        if not run_id:
            return None
        run = self.client.get_run(run_id)
        return MlflowRun(
            run_id=run.info.run_id,
            experiment_id=run.info.experiment_id,
            artifact_uri=run.info.artifact_uri,
            metrics=dict(run.data.metrics),
            params=dict(run.data.params),
            tags=dict(run.data.tags),
            name=run.info.run_name,
            status=run.info.status,
            start_time=run.info.start_time,
        )

    def artifact_uri(self, version: MlflowModelVersion, model_location: str | None, run: MlflowRun | None) -> str:
        """Where the version's files are: its logged model's artifacts (``models:/m-...``), a run's
        artifacts (``runs:/<id>/path``), or the URI its source names."""
        source = version.source
        if source.startswith("models:/"):
            if model_location is not None:
                return model_location
            if version.version is not None:  # models:/<name>/<version>: registered from another version
                return self.client.get_model_version_download_uri(version.name, version.version)
            raise MlflowImportError(f"its source {source} names a model that this MLflow store does not hold")
        if source.startswith("runs:/"):
            run_id, _, path = source[len("runs:/") :].partition("/")
            if run is None or run.run_id != run_id:
                run = self.run(run_id)
            if run is None:
                raise MlflowImportError(f"its source {source} names a run that this MLflow store does not hold")
            return run.artifact_uri.rstrip("/") + ("/" + path.strip("/") if path.strip("/") else "")
        if not source:
            raise MlflowImportError("it names no source (no files)")
        return source


def _model_id_of(source: str | None) -> str | None:
    """The logged model id of a ``models:/m-...`` source (MLflow 3 registers logged models so)."""
    if source and source.startswith("models:/m-") and "/" not in source[len("models:/") :]:
        return source[len("models:/") :]
    return None


def _pages(search: Any, **kwargs: Any) -> Iterator[Any]:
    token = None
    while True:
        page = search(max_results=PAGE, page_token=token, **kwargs)
        yield from page
        token = getattr(page, "token", None)
        if not token:
            return


# --- opening a store without writing to it --------------------------------------------------------


@contextlib.contextmanager
def _temporary_path(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"modelstore-{prefix}") as tmp:
        yield Path(tmp)


@contextlib.contextmanager
def _open(registry: MlflowRegistry, tracking_uri: str, registry_uri: str) -> Iterator[Any]:
    with contextlib.ExitStack() as stack:
        tracking = _read_only_uri(registry, tracking_uri, stack)
        registry_side = tracking if registry_uri == tracking_uri else _read_only_uri(registry, registry_uri, stack)
        import mlflow
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        stack.enter_context(_global_tracking_uri(mlflow, tracking, registry_side))
        try:
            client = MlflowClient(tracking_uri=tracking, registry_uri=registry_side)
            client.search_experiments(max_results=1)  # opens the store now: a refusal is the store's, not a version's
        except MlflowException as exc:
            raise MlflowImportError(f"MLflow cannot open {tracking_uri}: {_first_line(exc)}") from None
        yield client


def _read_only_uri(registry: MlflowRegistry, uri: str, stack: contextlib.ExitStack) -> str:
    """The URI MLflow opens for ``uri``: a sqlite database's copy; a file store as it is (checked to exist)."""
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        path = Path(unquote(uri[len("sqlite:///") :])) if uri.startswith("sqlite:///") else None
        if path is None or not path.is_file():
            raise MlflowImportError(f"{uri}: no such database file (give sqlite:///path/to/mlflow.db, absolute: sqlite:////abs/path)")
        registry.store_directory = path.resolve().parent
        copy = stack.enter_context(registry.scratch("mlflow-db-")) / "mlflow.db"
        _copy_database(path, copy)
        _migrate_copy(copy, uri)
        return f"sqlite:///{copy}"
    if parsed.scheme in ("", "file") and (len(parsed.scheme) != 1):  # a one-letter scheme is a Windows drive
        path = Path(unquote(parsed.path) if parsed.scheme == "file" else uri)
        if not path.is_dir():
            raise MlflowImportError(f"{uri}: no such MLflow store directory (MLflow would create an empty one)")
        if not any((path / name).exists() for name in ("models", "0", ".trash")) and not any(path.glob("*/meta.yaml")):
            raise MlflowImportError(f"{uri} does not look like an MLflow file store (no experiments, no models/ folder)")
        registry.store_directory = path.resolve()
        stack.enter_context(_environment(MLFLOW_ALLOW_FILE_STORE="true"))
        return path.resolve().as_uri()
    return uri


def _copy_database(path: Path, copy: Path) -> None:
    """A consistent copy of an sqlite database, read through a read-only connection."""
    try:
        source = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            target = sqlite3.connect(copy)
            with target:
                source.backup(target)
            target.close()
        finally:
            source.close()
    except sqlite3.DatabaseError as exc:
        raise MlflowImportError(f"{path} is not a readable sqlite database ({exc})") from None


def _migrate_copy(copy: Path, uri: str) -> None:
    """Bring the copy to the schema of the MLflow installed here, or say why it cannot be."""
    from mlflow.store.db import utils as db_utils
    from mlflow.version import VERSION

    with contextlib.closing(sqlite3.connect(copy)) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        revision = None
        if "alembic_version" in tables:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
    if "experiments" not in tables or revision is None:
        raise MlflowImportError(f"{uri} is not an MLflow tracking database (no experiments table or schema revision)")
    head = db_utils._get_latest_schema_revision()
    if revision == head:
        return
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(db_utils._get_alembic_config(f"sqlite:///{copy}"))
    try:
        script.get_revision(revision)
    except Exception:  # noqa: BLE001 - alembic's own error for a revision it does not know
        raise MlflowImportError(
            f"{uri} was written by an MLflow newer than the MLflow {VERSION} installed here (its schema revision"
            f" {revision} is unknown to it): upgrade it where you run the import (pip install -U mlflow-skinny)"
        ) from None
    engine = db_utils.create_sqlalchemy_engine_with_retry(f"sqlite:///{copy}")
    try:
        db_utils._upgrade_db(engine)  # the copy only: the user's database is never opened for writing
    finally:
        engine.dispose()


@contextlib.contextmanager
def _global_tracking_uri(mlflow: Any, tracking: str, registry_uri: str) -> Iterator[None]:
    from mlflow.tracking._tracking_service import utils as tracking_utils

    before = tracking_utils._tracking_uri
    with _environment(MLFLOW_TRACKING_URI=tracking, MLFLOW_REGISTRY_URI=registry_uri):
        mlflow.set_tracking_uri(tracking)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(before)


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
