r"""The environment a version was stored in: a requirements file to rebuild it, and what differs here.

Each version records the installed versions of what its flavor needs (``dependencies``, by the
builtin dependencies collector), which of them the flavor reads and writes its files with
(``environment.key``: the framework and serializer), the markers of platform-specific ones
(``environment.markers``) and the Python that ran (``runtime.python``).

What matters when loading, and so warns (or, with ``strict_environment=True``, refuses):

* Python's major.minor differs (3.11 -> 3.12);
* a key distribution is missing, or its major.minor differs (scikit-learn 1.8 -> 1.9, skops,
  xgboost, torch...). Patch releases (1.8.1 -> 1.8.2) and local builds (2.13.0+cpu) never warn:
  frameworks keep their formats across them.

Every other difference is listed by :meth:`ModelStore.check_environment` but never warned about.
The record is untrusted, and a requirements file is read by pip, which takes more than PEP 508
from a line: options from its first word that starts with ``-`` (``--index-url``,
``--config-settings``), a comment from ``#``, variables from ``${...}``, a continuation from a
trailing ``\``. So each dependency is checked (a PEP 508 name, a PEP 440 version parsed with
``packaging``, a PEP 508 marker parsed and printed as ``packaging`` prints it; ``load`` checks only
the key distributions, the ones it compares) and a marker must also keep to plain
words (no ``#``, ``$``, ``\``, ``;``, ``:``, ``/``, no word starting with ``-``). Anything else is
a :class:`CorruptRecordError` naming the field; nothing but what parsed is printed.

A distribution installed from a local directory, a VCS checkout or an archive (PEP 610's
``direct_url.json``: ``pip install -e .``, ``pip install ./plugin``, ``git+https://...``) is
recorded as such (``environment.installed_from``) and printed as a comment that says so: no index
serves ``modelstore-core==0.1.0`` built from a checkout, and one such line would make
``pip install -r`` fail as a whole. ``include_local=True`` (``--include-local``) pins them too,
for a team whose own index serves them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from . import distributions
from .errors import CorruptRecordError
from .protocol import keys
from .protocol.records import VersionRecord

#: What a printed marker may hold: PEP 508's operators, quotes and parentheses, and plain words.
_MARKER_TEXT = re.compile(r"[A-Za-z0-9_ .'\"<>=!~(),*+-]{1,500}")
_RELEASE = re.compile(r"v?(\d+)(?:\.(\d+))?")
_PYTHON = re.compile(r"\d+\.\d+(?:\.\d+)?[A-Za-z0-9.+]{0,20}")
#: How the requirements file explains where a distribution not from a package index came from
#: (recorded by the dependencies collector: :func:`~.distributions.installed_from`).
_SOURCE_TEXT = {"directory": "a local directory", "vcs": "a version-control checkout", "archive": "an archive file or URL"}
_SEPARATORS = re.compile(r"[-_.]+")
#: PEP 508's distribution name (what ``packaging.requirements.Requirement`` accepts as a name).
_DISTRIBUTION_NAME = re.compile(r"[A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9]", re.IGNORECASE)


class EnvironmentWarning(UserWarning):
    """``load`` found that this environment differs from the version's where it matters."""


@dataclass(frozen=True)
class Requirement:
    """One distribution the version was stored with: ``name==version ; marker``."""

    name: str
    version: str
    marker: str = ""
    #: the flavor reads and writes its files with it (framework, serializer)
    key: bool = False
    #: ``directory``, ``vcs`` or ``archive``: installed from there, not from a package index
    installed_from: str | None = None

    def line(self) -> str:
        return f"{self.name}=={self.version}" + (f" ; {self.marker}" if self.marker else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "marker": self.marker or None,
            "key": self.key,
            "installed_from": self.installed_from,
        }


@dataclass(frozen=True)
class Difference:
    """One way this environment differs from the version's: ``installed`` is ``None`` when missing."""

    name: str
    recorded: str
    installed: str | None
    #: whether loading warns about it (Python or a key distribution, beyond a patch release)
    matters: bool

    def __str__(self) -> str:
        here = f"{self.installed} here" if self.installed is not None else "not installed here"
        return f"{self.name} {self.recorded} recorded, {here}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "recorded": self.recorded, "installed": self.installed, "matters": self.matters}


@dataclass
class EnvironmentCheck:
    """What :meth:`ModelStore.check_environment` found: every difference, and which matter."""

    domain: str
    version: int
    python: str | None
    differences: list[Difference] = field(default_factory=list)

    @property
    def mattering(self) -> list[Difference]:
        return [d for d in self.differences if d.matters]

    @property
    def ok(self) -> bool:
        """Nothing that matters differs (patch releases and other packages may)."""
        return not self.mattering

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "version": self.version,
            "ok": self.ok,
            "differences": [d.to_json() for d in self.differences],
        }


@dataclass
class Environment:
    """The environment a version records: Python, platform, and its requirements."""

    domain: str
    version: int
    python: str | None
    implementation: str | None
    platform: str | None
    requirements: list[Requirement]

    def requirements_txt(self, *, include_local: bool = False) -> str:
        """A requirements file for ``pip install -r``: pinned as recorded, Python as a comment, and
        what was not installed from a package index as a comment that says so (pinned with
        ``include_local``)."""
        lines = [f"# The packages version {self.version} of {self.domain!r} was stored with (modelstore env)."]
        if self.python:
            where = f" on {self.platform}" if self.platform else ""
            major_minor = ".".join(self.python.split(".")[:2])
            lines.append(f"# Python {self.python} ({self.implementation or 'CPython'}{where}): install into a Python {major_minor}.")
        local = [r for r in self.requirements if r.installed_from and not include_local]
        lines += [r.line() for r in self.requirements if r not in local]
        if local:
            lines.append("# Not installed from a package index, so not pinned here: install each from its source")
            lines.append("# (or pin them with `modelstore env --include-local` if your own index serves them).")
            lines += [f"#   {r.line()}  (installed from {_SOURCE_TEXT[r.installed_from]})" for r in local]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "version": self.version,
            "python": self.python,
            "implementation": self.implementation,
            "platform": self.platform,
            "requirements": [r.to_json() for r in self.requirements],
        }


def environment(record: VersionRecord, *, only_key: bool = False) -> Environment:
    """The environment ``record`` describes, every field checked (see the module docstring); with
    ``only_key``, of the requirements only the key distributions (what ``load`` compares)."""
    key = keys.version_key(record.domain, record.version)
    doc = record.document
    dependencies = doc.get("dependencies") or {}
    if not isinstance(dependencies, dict):
        raise CorruptRecordError(key, "dependencies", "is not an object of distribution names to versions")
    recorded_env = doc.get("environment") or {}
    if not isinstance(recorded_env, dict):
        raise CorruptRecordError(key, "environment", "is not an object")
    markers = recorded_env.get("markers") or {}
    key_names = recorded_env.get("key")
    if key_names is None:  # recorded before `environment` existed: the framework the plugin named
        model = doc.get("model")
        framework = model.get("framework") if isinstance(model, dict) else None
        key_names = [framework] if isinstance(framework, str) else []
    if not isinstance(markers, dict) or not isinstance(key_names, list):
        raise CorruptRecordError(key, "environment", "is not {key: [names], markers: {name: marker}}")
    sources = recorded_env.get("installed_from") or {}
    if not isinstance(sources, dict) or not all(source in _SOURCE_TEXT for source in sources.values()):
        raise CorruptRecordError(key, "environment.installed_from", "is not an object of distribution names to directory, vcs or archive")
    canonical_keys = {_canonical(n) for n in key_names if isinstance(n, str)}
    requirements = [
        _requirement(key, name, version, markers.get(name), canonical_keys, sources.get(name))
        for name, version in dependencies.items()
        if not only_key or _canonical(name) in canonical_keys
    ]
    runtime = doc.get("runtime") if isinstance(doc.get("runtime"), dict) else {}
    python = runtime.get("python")
    if python is not None and (not isinstance(python, str) or not _PYTHON.fullmatch(python)):
        raise CorruptRecordError(key, "runtime.python", f"is not a Python version: {str(python)[:40]!r}")
    return Environment(
        record.domain,
        record.version,
        python,
        _plain(runtime.get("implementation")),
        _plain(runtime.get("platform")),
        sorted(requirements, key=lambda r: r.name.lower()),
    )


def check_environment(record: VersionRecord, *, only_key: bool = False) -> EnvironmentCheck:
    """Every difference between the version's environment and this one (only Python and the key
    distributions with ``only_key``: what ``load`` looks at)."""
    import platform

    env = environment(record, only_key=only_key)
    check = EnvironmentCheck(env.domain, env.version, env.python)
    here = platform.python_version()
    if env.python and env.python != here:
        check.differences.append(Difference("python", env.python, here, _major_minor(env.python) != _major_minor(here)))
    for requirement in env.requirements:
        found = distributions.installed(requirement.name)
        installed = found.version if found is not None else None
        if installed == requirement.version:
            continue
        if installed is None:
            matters = requirement.key and _applies(requirement.marker)
        else:
            matters = requirement.key and _major_minor(installed) != _major_minor(requirement.version)
        check.differences.append(Difference(requirement.name, requirement.version, installed, matters))
    return check


def _requirement(key: str, name: str, version: Any, marker: Any, canonical_keys: set[str], source: str | None) -> Requirement:
    """One recorded dependency, parsed with ``packaging`` (see the module docstring); ``key`` is the record's."""
    from packaging.version import InvalidVersion, Version

    if not _DISTRIBUTION_NAME.fullmatch(name):
        raise CorruptRecordError(key, f"dependencies.{name[:40]!r}", "is not a distribution name")
    try:
        if not isinstance(version, str) or len(version) > 100 or version != version.strip():
            raise InvalidVersion(version)
        Version(version)
    except InvalidVersion:
        raise CorruptRecordError(key, f"dependencies.{name}", f"is not a version: {str(version)[:40]!r}") from None
    printed = ""
    if marker:
        from packaging.markers import InvalidMarker, Marker  # 15 ms to import: only for a marker

        try:
            printed = str(Marker(marker)) if isinstance(marker, str) else ""
        except InvalidMarker:
            pass
        if not _MARKER_TEXT.fullmatch(printed) or any(word.startswith("-") for word in printed.split(" ")):
            raise CorruptRecordError(key, f"environment.markers.{name}", f"is not a plain PEP 508 marker: {str(marker)[:60]!r}")
    return Requirement(name, version, printed, _canonical(name) in canonical_keys, source)


def _major_minor(version: str) -> tuple[int, int] | str:
    match = _RELEASE.match(version)
    return (int(match.group(1)), int(match.group(2) or 0)) if match else version


def _canonical(name: str) -> str:
    """PEP 503's normalized name (what ``packaging.utils.canonicalize_name`` returns), without
    importing ``packaging.utils`` and the platform tags it imports on every load."""
    return _SEPARATORS.sub("-", name).lower()


def _plain(value: Any) -> str | None:
    """A free-text runtime field for a comment: one line, printable."""
    if not isinstance(value, str):
        return None
    return re.sub(r"[\x00-\x1f\x7f-\x9f]", "?", value)[:200]


def _applies(marker: str) -> bool:
    """Whether a requirement's marker (parsed already) holds here."""
    from packaging.markers import Marker

    return not marker or Marker(marker).evaluate()
