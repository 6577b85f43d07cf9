"""What a serializer reports about the files it wrote."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Flavor:
    """Returned by a ``modelstore_serialize`` implementation; recorded in the version's metadata.

    :param name: the flavor, unique across plugins (``"sklearn"``, ``"torch"``...). The
        ``modelstore_deserialize`` implementation that owns this name loads it back.
    :param format: the on-disk format (``"skops"``, ``"safetensors"``, ``"pickle"``...).
    :param plugin: the distribution that provides the flavor (``"modelstore-sklearn"``), so a
        reader without it is told what to ``pip install``.
    :param model_class: the fully qualified class of the stored object.
    :param safe: ``False`` when loading the files can execute code (pickle); such versions
        only load with ``trust=True``.
    :param dependencies: distributions whose installed versions are recorded (the framework and
        what it needs), read with ``importlib.metadata``.
    :param options: JSON-safe details the deserializer needs (entry file name, class...).
    :param files: stored name -> existing local path, for serializers whose files already exist
        (raw files). When empty, everything written into the serialize ``directory`` is stored.
    """

    name: str
    format: str
    plugin: str
    model_class: str | None = None
    safe: bool = True
    dependencies: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    def record(self, plugin_version: str | None) -> dict[str, Any]:
        """The JSON form stored under ``metadata["flavor"]``."""
        return {
            "name": self.name,
            "format": self.format,
            "plugin": self.plugin,
            "plugin_version": plugin_version,
            "model_class": self.model_class,
            "safe": self.safe,
            "options": self.options,
        }


def qualified_name(obj: Any) -> str:
    """``module.Class`` of an object's type."""
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"
