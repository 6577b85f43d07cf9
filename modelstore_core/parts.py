"""Several models in one version: ``upload(domain, models={"encoder": enc, "classifier": clf})``.

Each model is serialized by its own plugin into a folder named after it (``encoder/...``,
``classifier/...``); the files of all of them, and the extras, are stored and committed as one
version, atomically, like any other. The record's flavor is the core's ``parts`` flavor, whose
options list each part's name and flavor in upload order (so a signature covers them)::

    "flavor": {"name": "parts", "format": "parts", "plugin": "modelstore-core", "safe": true,
               "options": {"parts": [{"name": "encoder", "flavor": {"name": "torch", ...}},
                                     {"name": "classifier", "flavor": {"name": "sklearn", ...}}]}}
    "parts": {"encoder": {"model": {...}, "dependencies": {...}}, "classifier": {...}}

The top-level ``parts`` key holds what the metadata plugins recorded for each part (runtime and
git are the version's, recorded once). :func:`~modelstore_core.protocol.records.parse_parts`
validates the flavor's list when the record is read. ``load`` (:mod:`modelstore_core.load`) returns ``{name: model}`` in
upload order, or one model with ``part="classifier"``; each part's plugin sees only its own
folder and files (:class:`PartFiles`), as if the part were a version of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidNameError, UsageError
from .flavor import PARTS, Flavor
from .jsonvalues import json_value
from .names import check_name
from .plugins import Plugins, collect_metadata, serialize
from .protocol.records import VersionRecord

if TYPE_CHECKING:
    from .cache import VersionFiles

#: Metadata recorded once per version, not per part.
VERSION_WIDE = ("runtime", "git")


def check_load(record: VersionRecord, part: str | None, part_options: Any) -> dict[str, dict[str, Any]]:
    """``part`` and ``part_options`` of a load, against the version's parts; ``part_options`` checked."""
    names = [p.name for p in record.parts]
    if part is not None and part not in names:
        raise UsageError(f"version {record.version} of {record.domain!r} has no part {part!r}; its parts are {', '.join(names)}")
    return check_part_options(part_options, names)


def check_part_options(part_options: Any, names: list[str]) -> dict[str, dict[str, Any]]:
    """``part_options``: a dict of part name to a dict of options for that part's plugin."""
    if part_options is None:
        return {}
    if not isinstance(part_options, dict) or not all(isinstance(v, dict) for v in part_options.values()):
        raise UsageError("part_options must be a dict of part names to dicts of options: part_options={'encoder': {'model': Net}}")
    unknown = sorted(set(part_options) - set(names))
    if unknown:
        raise UsageError(f"part_options names {unknown}, which are not parts of this version ({', '.join(names)})")
    return part_options


class Parts:
    """The models passed as ``ModelStore.upload(domain, models={...})``."""

    def __init__(self, models: Any, part_options: Any = None):
        if not isinstance(models, dict) or not models:
            raise UsageError("models= must be a non-empty dict of part names to models: models={'encoder': enc, 'classifier': clf}")
        for name, model in models.items():
            check_name(name, "part name")
            if name == "extras":
                raise InvalidNameError("'extras' cannot name a part: it is the folder of a version's extras")
            if model is None:
                raise UsageError(f"part {name!r} is None: pass a model for every part")
        self.models = dict(models)
        self.part_options = check_part_options(part_options, list(models))
        self.flavors: dict[str, Flavor] = {}

    def serialize(self, plugins: Plugins, directory: Path, options: dict[str, Any]) -> Flavor:
        """Each model by its own plugin into ``directory / name``; the ``parts`` flavor of them all."""
        for name, model in self.models.items():
            folder = directory / name
            folder.mkdir()
            flavor = serialize(plugins, model, folder, {**options, **self.part_options.get(name, {})})
            self.flavors[name] = flavor
        files: dict[str, Path] = {}
        if any(f.files for f in self.flavors.values()):  # a serializer named existing files: name every file
            for name, flavor in self.flavors.items():
                own = flavor.files or {p.relative_to(directory / name).as_posix(): p for p in (directory / name).rglob("*") if p.is_file()}
                files.update({f"{name}/{path}": Path(source) for path, source in own.items()})
        return Flavor(
            name=PARTS,
            format=PARTS,
            plugin="modelstore-core",
            safe=all(f.safe for f in self.flavors.values()),
            dependencies=sorted({d for f in self.flavors.values() for d in f.dependencies}),
            files=files,
            digests={} if files else {f"{name}/{path}": d for name, f in self.flavors.items() for path, d in f.digests.items()},
            options={"parts": [{"name": name, "flavor": json_value(f.to_json())} for name, f in self.flavors.items()]},
        )

    def metadata(self, plugins: Plugins, domain: str) -> dict[str, Any]:
        """What the metadata plugins record for each part, without what is the same for the whole version."""
        out = {}
        for name, model in self.models.items():
            found = collect_metadata(plugins, model, self.flavors[name], domain)
            out[name] = {key: value for key, value in found.items() if key not in VERSION_WIDE}
        return out


class PartFiles:
    """One part's files of a version's :class:`~modelstore_core.cache.VersionFiles`, named
    relative to the part's folder (what its plugin's ``verified=`` receives). A name that leaves
    the folder (``../other/x``) is no file of the version and is refused there."""

    def __init__(self, view: VersionFiles, part: str):
        self._view, self._prefix = view, part + "/"
        self.directory = view.directory / part

    @property
    def pending(self) -> list[str]:
        return [name[len(self._prefix) :] for name in self._view.pending if name.startswith(self._prefix)]

    def verify_rest(self) -> None:
        self._view.verify_rest()

    def check_after_failure(self) -> None:
        self._view.check_after_failure()

    def open(self, name: str):
        return self._view.open(self._prefix + name if isinstance(name, str) else name)

    def path(self, name: str) -> Path:
        return self._view.path(self._prefix + name if isinstance(name, str) else name)

    def passed_before(self, name: str, check: str) -> bool:
        return self._view.passed_before(self._prefix + name if isinstance(name, str) else name, check)

    def remember_passed(self, name: str, check: str) -> None:
        self._view.remember_passed(self._prefix + name if isinstance(name, str) else name, check)
