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
validates the flavor's list when the record is read. ``load`` returns ``{name: model}`` in
upload order, or one model with ``part="classifier"``; each part's plugin sees only its own
folder and files, as if the part were a version of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidNameError, MissingPluginError, UsageError
from .flavor import Flavor
from .metadata import jsonable
from .names import check_name
from .plugins import KNOWN_PLUGINS, Plugins, distribution_version
from .protocol.records import PARTS, VersionRecord

if TYPE_CHECKING:
    from .materialize import VersionFiles

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
        from .upload import serialize

        for name, model in self.models.items():
            folder = directory / name
            folder.mkdir()
            flavor = serialize(plugins, model, folder, {**options, **self.part_options.get(name, {})})
            flavor.plugin_version = distribution_version(flavor.plugin)
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
            options={"parts": [{"name": name, "flavor": jsonable(f.to_json())} for name, f in self.flavors.items()]},
        )

    def metadata(self, plugins: Plugins, domain: str) -> dict[str, Any]:
        """What the metadata plugins record for each part, without what is the same for the whole version."""
        from .upload import collect_metadata

        out = {}
        for name, model in self.models.items():
            found = collect_metadata(plugins, model, self.flavors[name], domain)
            out[name] = {key: value for key, value in found.items() if key not in VERSION_WIDE}
        return out


def load_parts(
    plugins: Plugins,
    record: VersionRecord,
    view: VersionFiles,
    part: str | None,
    options: dict[str, Any],
    part_options: Any,
) -> Any:
    """``{name: model}`` of a ``parts`` version (or the model of ``part``), each loaded by its own
    plugin from its own folder. ``options`` go to every part, ``part_options[name]`` to one.

    Every file is verified first (one pass each); each plugin then reads its part's files through
    ``verified`` (names relative to the part's folder), which serves them without hashing again.
    """
    extra = check_load(record, part, part_options)
    view.verify_rest()
    loaded = {}
    for p in record.parts:
        if part is not None and p.name != part:
            continue
        prefix = p.name + "/"
        files = [f.path[len(prefix) :] for f in record.model_files if f.path.startswith(prefix)]
        result = plugins.hook.modelstore_deserialize(
            flavor=p.flavor,
            directory=view.directory / p.name,
            files=files,
            options={**options, **extra.get(p.name, {})},
            verified=PartFiles(view, p.name),
        )
        if result is None:
            raise MissingPluginError(p.flavor.name, p.flavor.plugin or KNOWN_PLUGINS["flavor"].get(p.flavor.name))
        loaded[p.name] = result
    return loaded[part] if part is not None else loaded


class PartFiles:
    """One part's files of a version's :class:`~modelstore_core.materialize.VersionFiles`, named
    relative to the part's folder (what its plugin's ``verified=`` receives). A name that leaves
    the folder (``../other/x``) is no file of the version and is refused there."""

    def __init__(self, view: VersionFiles, part: str):
        self._view, self._prefix = view, part + "/"
        self.directory = view.directory / part

    def open(self, name: str):
        return self._view.open(self._prefix + name if isinstance(name, str) else name)

    def path(self, name: str) -> Path:
        return self._view.path(self._prefix + name if isinstance(name, str) else name)
