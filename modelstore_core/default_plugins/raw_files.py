"""Builtin flavor: raw files of any framework, stored as they are and loaded back as local paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InvalidNameError
from ..flavor import Flavor
from ..hookspecs import hookimpl


class RawFiles:
    """The files passed as ``ModelStore.upload(domain, files=[...])``; directories are stored recursively."""

    def __init__(self, paths: list[Path]):
        self.paths = paths


@hookimpl(trylast=True)
def modelstore_serialize(model: Any, directory: Path, options: dict[str, Any]):
    if not isinstance(model, RawFiles):
        return None
    from ..commit import expand

    files: dict[str, Path] = {}
    for name, path in (pair for p in model.paths for pair in expand(Path(p))):
        if name in files:
            raise InvalidNameError(f"two files would be stored as {name!r}; rename one of them")
        files[name] = path
    return Flavor(name="files", format="files", plugin="modelstore-core", files=files)


@hookimpl(trylast=True)
def modelstore_deserialize(flavor: dict[str, Any], directory: Path, files: list[str]):
    if flavor["name"] != "files":
        return None
    return [directory / name for name in files]


@hookimpl
def modelstore_flavors():
    return ["files"]
