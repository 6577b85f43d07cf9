"""The flavor: which plugin wrote a version's files, in what format, and how to load them back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CorruptRecordError

#: The core's flavor of raw files (``upload(d, files=[...])``): stored as they are, loaded back as paths.
RAW_FILES = "files"
#: The core's flavor of a version that holds several models, each in its own folder (:mod:`modelstore_core.parts`).
PARTS = "parts"


@dataclass
class Flavor:
    """What a ``modelstore_serialize`` implementation returns, and what ``modelstore_deserialize``
    receives back (read from the version record, where it is stored under ``metadata["flavor"]``).

    :param name: the flavor, unique across plugins (``"sklearn"``, ``"torch"``...). The
        ``modelstore_deserialize`` implementation that owns this name loads it back.
    :param format: the on-disk format (``"skops"``, ``"safetensors"``, ``"pickle"``...).
    :param plugin: the distribution that provides the flavor (``"modelstore-sklearn"``), so a
        reader without it is told what to ``pip install``.
    :param model_class: the fully qualified class of the stored object.
    :param safe: ``False`` when loading the files can execute code (pickle); such versions
        only load with ``trust=True``.
    :param options: JSON-safe details the deserializer needs (entry file name, class...).
    :param dependencies: at upload only: distributions whose installed versions are recorded (the
        framework and what it needs), read with ``importlib.metadata``. Not stored in the flavor.
    :param files: at upload only: stored name -> existing local path, for serializers whose files
        already exist. When empty, everything written into the serialize ``directory`` is stored.
    :param digests: at upload only: stored name -> sha256 (hex) of files the serializer wrote
        into the serialize ``directory`` and hashed as it wrote them
        (:class:`~modelstore_core.hashing.HashingWriter`), so the core does not read them again.
        A wrong digest is caught by the next load's verification, never trusted past it.
    :param plugin_version: set by the core: the version of ``plugin`` that wrote the files.
    """

    name: str
    format: str
    plugin: str
    model_class: str | None = None
    safe: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    dependencies: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    plugin_version: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form stored under ``metadata["flavor"]``."""
        return {
            "name": self.name,
            "format": self.format,
            "plugin": self.plugin,
            "plugin_version": self.plugin_version,
            "model_class": self.model_class,
            "safe": self.safe,
            "options": self.options,
        }


def qualified_name(obj: Any) -> str:
    """``module.Class`` of an object's type."""
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def top_level_modules(model: Any) -> list[str]:
    """The top-level package of the module that defines each class of ``type(model).__mro__``,
    most-derived first (``["xgboost", "xgboost", "sklearn", "builtins"]`` for an ``XGBClassifier``).

    Decided from names only: nothing is imported.
    """
    return [(getattr(cls, "__module__", None) or "").split(".")[0] for cls in type(model).__mro__]


def comes_from(model: Any, *packages: str) -> bool:
    """Whether ``type(model)`` or one of its base classes is defined in one of ``packages``
    (top-level package names, such as ``"catboost"``), decided without importing anything."""
    return not set(packages).isdisjoint(top_level_modules(model))


def model_file(directory: Path, files: list[str], name: Any, *, option: str = "file") -> Path:
    """The verified model file ``name`` (a flavor option, read from a record that anyone with write
    access to the store could have edited) inside ``directory``.

    Only the files the core verified and handed to ``modelstore_deserialize`` may be read: any
    other name (another path, ``../x``, an absolute path, a non-string) is a
    :class:`CorruptRecordError` naming the option.
    """
    if not isinstance(name, str) or name not in files:
        problem = f"names {str(name)[:80]!r}, which is not one of the version's model files {files}"
        raise CorruptRecordError("the version record", f"flavor.options.{option}", problem)
    return directory / name
