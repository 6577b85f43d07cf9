"""Builtin collector: installed versions of the packages the stored model depends on.

Read with ``importlib.metadata`` (never by importing the packages or running pip): the
flavor's own distributions, what they require directly, the flavor's plugin and the core.

Besides ``dependencies`` (name -> version), the record's ``environment`` key says which of them
matter to load the files (``key``: the flavor's own distributions, its framework and serializer)
and the environment markers under which a dependency is required (``markers``: a package needed
only on some platforms) and which were not installed from a package index (``installed_from``:
``directory``, ``vcs`` or ``archive``, from PEP 610's ``direct_url.json``; never the path or URL
itself), so that ``modelstore env`` can write a requirements file that installs elsewhere.
"""

from __future__ import annotations

from ..distributions import installed
from ..flavor import Flavor
from ..hookspecs import hookimpl


def versions(names: list[str], *, requirements: bool = True, markers: dict[str, str] | None = None) -> dict[str, str]:
    """Installed versions of ``names`` and, with ``requirements``, of what each requires directly
    (the marker of a conditional requirement is added to ``markers``)."""
    found: dict[str, str] = {}
    unconditional: set[str] = set(names)
    for name in names:
        info = installed(name)
        if info is None:
            continue
        found[info.name] = info.version
        for required, marker in info.requires if requirements else ():
            if (sub := installed(required)) is not None:
                found[sub.name] = sub.version
                if markers is not None and sub.name not in unconditional:
                    if marker:
                        markers[sub.name] = marker
                    else:  # required everywhere by one of them: no marker
                        unconditional.add(sub.name)
                        markers.pop(sub.name, None)
    return dict(sorted(found.items(), key=lambda kv: kv[0].lower()))


@hookimpl
def modelstore_collect_metadata(flavor: Flavor):
    markers: dict[str, str] = {}
    found = versions(flavor.dependencies, markers=markers)
    key = sorted(info.name for name in flavor.dependencies if (info := installed(name)) is not None)
    found.update(versions([flavor.plugin, "modelstore-core"], requirements=False))
    environment = {"key": key, "markers": {name: markers[name] for name in sorted(markers) if name not in key}}
    sources = {name: info.source for name in found if (info := installed(name)) is not None and info.source}
    if sources:
        environment["installed_from"] = dict(sorted(sources.items()))
    return {"dependencies": dict(sorted(found.items(), key=lambda kv: kv[0].lower())), "environment": environment}
