"""A load, from a name to the model object: the twin of :mod:`.upload`.

1. **resolve** which version ``version``/``state``/latest names (offline: what this machine last
   saw, :mod:`.offline`; under a trust policy, what a trusted key's signed statement says and this
   machine has not seen superseded, :mod:`.pointers`);
2. **record**: read it, validated (:mod:`.protocol.records`);
3. **check** that it may be loaded here, before anything is fetched: the parts asked for, the
   trust policy's signatures, the environment it was stored in, ``trust=True`` for files that can
   run code;
4. **view** its files in the per-user cache (:mod:`.cache`): each verified already, or to be
   verified as it is read;
5. **deserialize**: ask the flavor plugins to rebuild it (:func:`deserialize`: those that read
   through ``verified`` first, the others once every file is hashed), then verify whatever no
   plugin read.

``download`` shares steps 1-3 and writes verified copies into the caller's directory instead.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import pointers
from .cache import Cache, VersionFiles, copy_verified, write_files
from .environment import EnvironmentCheck, EnvironmentWarning, check_environment
from .errors import (
    CorruptArtifactError,
    DanglingStateError,
    DomainNotFoundError,
    EnvironmentMismatchError,
    KeyNotFoundError,
    ModelStoreError,
    NotCachedError,
    OfflineError,
    StorageError,
    TargetExistsError,
    UnsafeServerError,
    UntrustedArtifactError,
    UntrustedSignatureError,
    UsageError,
    VersionNotFoundError,
)
from .flavor import RAW_FILES, Flavor
from .names import check_name, check_version
from .offline import StaleWarning, offline_hint
from .parts import PartFiles, check_load
from .plugins import Plugins, deserializers, missing_plugin
from .pointers import Pointer
from .progress import ProgressCallback
from .protocol import read
from .protocol.records import VersionRecord
from .storage import Storage
from .version import Version

if TYPE_CHECKING:
    from .signing import TrustPolicy


class Loader:
    """The load path of one store: :meth:`resolve`, :meth:`info` (resolve and read the record),
    :meth:`load` and :meth:`download`.

    :param policy: returns the store's trust policy (``None``: none); called when a version is checked.
    """

    def __init__(self, storage: Storage, plugins: Plugins, cache: Cache, *, offline: bool, policy: Callable[[], TrustPolicy | None]):
        self.storage, self.plugins, self.cache = storage, plugins, cache
        self.offline = offline
        self._policy = policy
        self._environment_checks: dict[tuple, EnvironmentCheck] = {}  # by (domain, version, created)

    # --- 1. resolve ---------------------------------------------------------------------------

    def version(self, domain: str, n: int) -> Version:
        """A handle on version ``n`` whose record is read on first access."""
        return Version(domain, n, fetch=lambda: read.read_record(self.storage, domain, n))

    def latest(self, domain: str) -> Version:
        return self.resolve(domain)

    def resolve(self, domain: str, version: int | None = None, state: str | None = None) -> Version:
        """Which version ``version``/``state``/latest names (its record not yet read)."""
        return self._resolve(domain, version, state)[0]

    def _resolve(self, domain: str, version: int | None, state: str | None) -> tuple[Version, Pointer | None]:
        """The version named, and under a trust policy the signed statement of the pointer that named it."""
        check_name(domain, "domain name")
        _one_of(version, state)
        if state is not None:
            check_name(state, "state name")
        if version is not None:
            return self.version(domain, check_version(version)), None
        policy = self._policy()
        if policy is not None and not self.offline:
            seen = self.cache.seen_pointers(self.storage.url)
            if state is None:
                pointer = pointers.trusted_latest(self.storage, domain, policy, seen)
            else:
                pointer = pointers.trusted_state(self.storage, domain, state, policy, seen)
            return self.version(domain, pointer.version), pointer
        if state is not None:
            return self.version(domain, read.state_version(self.storage, domain, state)), None
        n, _ = read.latest(self.storage, domain)
        return self.version(domain, n), None

    def states(self, domain: str, problems: list[str] | None = None) -> dict[str, int]:
        """``{state: version}``; under a trust policy only the states a trusted key vouches for (why
        each other one was left out goes to ``problems``)."""
        check_name(domain, "domain name")
        policy = self._policy()
        if policy is not None:
            found = pointers.trusted_states(self.storage, domain, policy, self.cache.seen_pointers(self.storage.url), problems or [])
        else:
            found = {name: s.version for name, s in read.read_states(self.storage, domain).items()}
        if not found and not read.domain_exists(self.storage, domain):
            raise DomainNotFoundError(domain)
        return dict(sorted(found.items()))

    # --- 2. record ------------------------------------------------------------------------------

    def info(self, domain: str, version: int | None = None, state: str | None = None) -> Version:
        """The version named, with its record read.

        Online, which version ``latest`` or ``state`` named is remembered on this machine for
        offline loads; offline, it is answered from that memory and the cache alone. Under a trust
        policy, the signed statement of ``latest`` or ``state`` must name this very record, and is
        remembered as the newest seen (an older one is refused later: :mod:`.pointers`).
        """
        if self.offline:
            return self._offline_version(domain, version, state)
        try:
            v, pointer = self._resolve(domain, version, state)
            try:
                v.record  # noqa: B018 - read now, raising here if it is gone
            except VersionNotFoundError:
                if pointer is not None:
                    raise pointers.missing(pointer, self._policy()) from None
                if state is not None:
                    raise DanglingStateError(v.domain, state, v.version) from None
                raise
        except StorageError as exc:
            advice = None if isinstance(exc, (KeyNotFoundError, UnsafeServerError)) else self._offline_advice(domain, version, state)
            if advice is None:
                raise
            raise StorageError(f"{exc}; {advice[0]}", cli=f"{exc}; {advice[1]}") from exc
        if pointer is not None:
            policy = self._policy()
            try:
                pointers.check_record(pointer, v.record, policy)
            except UntrustedSignatureError:
                policy.check(self.storage, v.record)  # a record edited since it was signed: its signatures say so more precisely
                raise
            pointers.remember(pointer, self.cache.seen_pointers(self.storage.url))
        if version is None:
            self.cache.seen_names(self.storage.url).remember(v.domain, state, v.version)
        return v

    def _offline_version(self, domain: str, version: int | None, state: str | None) -> Version:
        """What this machine last saw of ``domain``/``version``/``state`` (no request)."""
        check_name(domain, "domain name")
        _one_of(version, state)
        url = self.storage.url
        if version is None:
            what = "latest" if state is None else f"state {check_name(state, 'state name')!r}"
            seen = self.cache.seen_names(url).lookup(domain, state)
            if seen is None:
                raise NotCachedError(
                    f"{offline_hint(url)}, and {what} of {domain!r} was never resolved on this machine:"
                    " load it once with the store reachable, or name a cached version"
                )
            version, when = seen
            warnings.warn(
                f"offline: {what} of {domain!r} is version {version} as this machine last saw it ({when});"
                " the store was not asked and may have moved on since",
                StaleWarning,
                stacklevel=4,
            )
        record = self.cache.cached_record(self.storage, domain, check_version(version))
        if record is None:
            raise NotCachedError(
                f"{offline_hint(url)}, and version {version} of {domain!r} is not in this machine's cache:"
                " load it once with the store reachable"
            )
        return Version(domain, version, record)

    def _offline_advice(self, domain: str, version: int | None, state: str | None) -> tuple[str, str] | None:
        """For an error reaching the store: how to load this request offline, if this machine can (as
        the Python API says it, and as the command line does)."""
        seen = (version, "") if version is not None else self.cache.seen_names(self.storage.url).lookup(domain, state)
        if seen is not None and self.cache.cached_record(self.storage, domain, seen[0]) is not None:
            cached = f"this machine has version {seen[0]} of {domain!r} cached: load it without the store with MODELSTORE_OFFLINE=1"
            stale = "; the answer may be stale"
            return f"{cached} (ModelStore(url, offline=True)){stale}", cached + stale
        return None

    # --- 3. check -------------------------------------------------------------------------------

    def check_trust(self, record: VersionRecord) -> None:
        """With a trust policy, the version must be signed as it requires (:class:`UntrustedSignatureError`)."""
        policy = self._policy()
        if policy is None:
            return
        if self.offline:
            problem = (
                f"{offline_hint(self.storage.url)}, and a trust policy is set: signatures live in the store and cannot be checked offline"
            )
            raise OfflineError(
                f"{problem}; load online, or open the store with trusted_keys=[] to load without the policy",
                cli=f"{problem}; run it online, or unset $MODELSTORE_TRUSTED_KEYS to go without the policy",
            )
        policy.check(self.storage, record)

    def check_environment(self, record: VersionRecord, strict: bool) -> None:
        """Warn once per version, in one line, when what matters to load it differs here; raise with ``strict``.

        Checked once per version and store object (records never change; a version number reused
        after ``delete_domain`` has another creation time)."""
        if record.flavor.name == RAW_FILES:
            return  # files as they are: no framework reads them
        seen = (record.domain, record.version, record.created)
        check = self._environment_checks.get(seen)
        first = check is None
        if first:
            check = self._environment_checks[seen] = check_environment(record, only_key=True)
        if check.ok:
            return
        if strict:
            raise EnvironmentMismatchError(record.domain, record.version, check.mattering)
        if first:
            shown = "; ".join(str(d) for d in check.mattering)
            warnings.warn(
                f"version {record.version} of {record.domain!r} was stored with another environment: {shown}"
                f" (`modelstore env {record.domain} {record.version}` prints its requirements)",
                EnvironmentWarning,
                stacklevel=4,
            )

    def check(self, record: VersionRecord, *, trust: bool, strict_environment: bool, part: str | None, part_options: Any) -> None:
        """Step 3 of a load: everything that can refuse it before a file is fetched."""
        if record.parts:
            check_load(record, part, part_options)
        elif part is not None or part_options is not None:
            raise UsageError(
                f"version {record.version} of {record.domain!r} holds one model, not parts: load it without part=/part_options="
            )
        self.check_trust(record)
        self.check_environment(record, strict_environment)
        if not (record.flavor.safe or trust) and record.flavor.name == RAW_FILES:  # files no plugin vouches for (imported pickles)
            raise UntrustedArtifactError(
                f"version {record.version} of {record.domain!r} is marked unsafe (its files can run code when"
                " loaded, e.g. pickles imported from the original modelstore or MLflow); pass trust=True to load()"
                " only if you trust whoever could write to this store"
            )

    # --- 4. view --------------------------------------------------------------------------------

    def view(self, record: VersionRecord, progress: ProgressCallback | None = None) -> VersionFiles:
        """The version's files in the cache (offline: only a complete, intact view will do)."""
        if not self.offline:
            return self.cache.view(self.storage, record, progress)
        view = self.cache.intact_view(self.storage, record, progress)
        if view is None:
            raise self._not_cached(record)
        return view

    def _not_cached(self, record: VersionRecord) -> NotCachedError:
        return NotCachedError(
            f"{offline_hint(self.storage.url)}, and the cached files of version {record.version} of {record.domain!r}"
            " are missing or changed: load it once with the store reachable"
        )

    # --- the whole path -------------------------------------------------------------------------

    def load(
        self,
        domain: str,
        version: int | None = None,
        *,
        state: str | None = None,
        trust: bool = False,
        strict_environment: bool = False,
        part: str | None = None,
        part_options: dict[str, dict[str, Any]] | None = None,
        progress: ProgressCallback | None = None,
        options: dict[str, Any] | None = None,
    ) -> Any:
        """Resolve, read, check, view, deserialize (:meth:`ModelStore.load <modelstore_core.ModelStore.load>`)."""
        record = self.info(domain, version, state).record
        self.check(record, trust=trust, strict_environment=strict_environment, part=part, part_options=part_options)
        view = self.view(record, progress)
        return deserialize(self.plugins, record, view, {**(options or {}), "trust": trust}, part, part_options)

    def file_path(self, domain: str, version: int | Version | None = None, *, state: str | None = None, path: str) -> Path:
        """Resolve, read, check trust, view; the verified path of one file of the version (a
        :class:`Version` already read is not read again)."""
        record = version.record if isinstance(version, Version) else self.info(domain, version, state).record
        self.check_trust(record)
        if not any(f.path == path for f in record.files):
            raise UsageError(f"version {record.version} of {record.domain!r} has no file {str(path)[:200]!r}")
        return self.view(record).path(path)

    def download(
        self,
        domain: str,
        version: int | None = None,
        *,
        state: str | None = None,
        to: str | os.PathLike | None = None,
        overwrite: bool = False,
        progress: ProgressCallback | None = None,
    ) -> Path:
        """Resolve, read, check trust, then write verified copies of the files into ``to``
        (:meth:`ModelStore.download <modelstore_core.ModelStore.download>`)."""
        v = self.info(domain, version, state)
        self.check_trust(v.record)
        cached = None
        if self.offline:
            cached = self.cache.cached_files(self.storage, v.record)
            if cached is None:
                raise self._not_cached(v.record)
        target = Path(to) if to is not None else Path.cwd() / f"{v.domain}-{v.version}"
        if not overwrite:
            existing = [f.path for f in v.files if os.path.lexists(target / f.path)]
            if existing:
                raise TargetExistsError(str(target), existing)
        target.mkdir(parents=True, exist_ok=True)
        staging = target / f".modelstore-{os.urandom(16).hex()}.part"
        try:
            if cached is not None:
                copy_verified(cached, v.files, staging)
            else:
                write_files(self.storage, v.record, staging, self.cache, progress)
                self.cache.remember_record(self.storage, v.record)
            inside = os.path.realpath(target)
            for entry in v.files:
                dest = target / entry.path
                dest.parent.mkdir(parents=True, exist_ok=True)
                # A directory of the target may be a link (the caller's own): never write through it.
                if os.path.commonpath([inside, os.path.realpath(dest.parent)]) != inside:
                    raise UsageError(f"{dest.parent} leads outside {target} (a symbolic link); download into a directory without links")
                os.replace(staging / entry.path, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target


def _one_of(version: int | None, state: str | None) -> None:
    if version is not None and state is not None:
        raise UsageError(
            f"got version={version!r} and state={state!r}: a version is named by one of them, not both",
            cli=f"got VERSION {version} and --state {state}: a version is named by one of them, not both",
        )


# --- 5. deserialize ---------------------------------------------------------------------------------


def deserialize(
    plugins: Plugins, record: VersionRecord, view: VersionFiles, options: dict[str, Any], part: str | None = None, part_options: Any = None
) -> Any:
    """Step 5 of a load: what the version's files rebuild. Raw files are a list of their verified
    paths; a version of several models is ``{name: model}`` (or the model of ``part``), each part
    by its own plugin from its own folder (``options`` go to every part, ``part_options[name]``
    to one); any other version is its flavor plugin's object. Every file is verified before
    anything is returned."""
    if record.flavor.name == RAW_FILES:
        view.verify_rest()
        return [view.directory / f.path for f in record.model_files]
    if not record.parts:
        return deserialize_flavor(plugins, record.flavor, view, [f.path for f in record.model_files], options)
    extra = check_load(record, part, part_options)
    view.verify_rest()  # every part's files in one pass each; each plugin then reads them without hashing again
    loaded = {}
    for p in record.parts:
        if part is None or p.name == part:
            prefix = p.name + "/"
            files = [f.path[len(prefix) :] for f in record.model_files if f.path.startswith(prefix)]
            loaded[p.name] = deserialize_flavor(plugins, p.flavor, PartFiles(view, p.name), files, {**options, **extra.get(p.name, {})})
    return loaded[part] if part is not None else loaded


def deserialize_flavor(plugins: Plugins, flavor: Flavor, view: VersionFiles | PartFiles, files: list[str], options: dict[str, Any]) -> Any:
    """Ask the flavor plugins to rebuild ``flavor`` from ``files`` of ``view``; every file is
    verified before anything is returned (:class:`MissingPluginError` when no plugin loads it).

    Deserializers that take ``verified`` are asked first, with files not hashed yet: they read
    them through ``verified.open`` (verified in that same pass) or ``verified.path``. The others
    run only once every file was hashed. A file no deserializer read is hashed before returning.
    """
    streaming, hash_first = deserializers(plugins)
    kwargs = {"flavor": flavor, "directory": view.directory, "files": files, "options": options, "verified": view}
    if streaming is not None and view.pending:
        try:
            result = streaming(**kwargs)
        except Exception as exc:
            if isinstance(exc, CorruptArtifactError) or not isinstance(exc, (ModelStoreError, TypeError)):
                view.check_after_failure()  # a damaged file may be the real cause: IntegrityError names it
            raise
        view.verify_rest()
        if result is None and hash_first is not None:
            result = hash_first(**kwargs)
    else:
        view.verify_rest()  # no deserializer verifies as it reads, or nothing is left to verify
        result = plugins.hook.modelstore_deserialize(**kwargs)
    if result is None:
        raise missing_plugin(flavor)
    return result
