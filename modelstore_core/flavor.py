"""The flavor: which plugin wrote a version's files, in what format, and how to load them back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
