"""Builtin collector: installed versions of the packages the stored model depends on.

Read with ``importlib.metadata`` (never by importing the packages or running pip): the
flavor's own distributions, what they require directly, the flavor's plugin and the core.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import metadata

from ..flavor import Flavor
from ..hookspecs import hookimpl

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@cache
def installed(name: str) -> tuple[str, str, tuple[str, ...]] | None:
    """(canonical name, version, names it requires outside extras) of an installed distribution."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None
    requires = []
    for requirement in dist.requires or ():
        if "extra" in requirement.partition(";")[2]:
            continue
        if match := _NAME.match(requirement):
            requires.append(match.group(0))
    return dist.metadata["Name"], dist.version, tuple(requires)


def versions(names: list[str], *, requirements: bool = True) -> dict[str, str]:
    """Installed versions of ``names`` and, with ``requirements``, of what each requires directly."""
    found: dict[str, str] = {}
    for name in names:
        info = installed(name)
        if info is None:
            continue
        found[info[0]] = info[1]
        for required in info[2] if requirements else ():
            if (sub := installed(required)) is not None:
                found[sub[0]] = sub[1]
    return dict(sorted(found.items(), key=lambda kv: kv[0].lower()))


@hookimpl
def modelstore_collect_metadata(flavor: Flavor):
    found = versions(flavor.dependencies)
    found.update(versions([flavor.plugin, "modelstore-core"], requirements=False))
    return {"dependencies": dict(sorted(found.items(), key=lambda kv: kv[0].lower()))}
