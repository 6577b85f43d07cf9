"""The :class:`ModelStore` API."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import (
    CorruptArtifactError,
    CorruptRecordError,
    DanglingStateError,
    DomainNotFoundError,
    EnvironmentMismatchError,
    InputMismatchError,
    KeyNotFoundError,
    MissingPluginError,
    ModelStoreError,
    StorageError,
    TargetExistsError,
    UnknownSchemeError,
    UnsafeServerError,
    UntrustedArtifactError,
    UsageError,
    VersionNotFoundError,
)
from .materialize import Cache, VersionFiles, copy_verified, write_files
from .names import check_name, check_tags, check_version
from .plugins import KNOWN_PLUGINS, Plugins, get_plugins
from .progress import ProgressCallback
from .protocol import commit, keys, read
from .storage import Storage
from .version import Version

if TYPE_CHECKING:  # imported where used: `import modelstore_core` + a listing stays fast
    from .compare import Comparison
    from .environment import Environment, EnvironmentCheck
    from .gc import GCReport
    from .replicate import CopyReport
    from .signature import InputCheck
    from .signing import SignatureInfo, TrustPolicy
    from .verify import VerifyReport

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")


def default_url() -> str:
    """``$MODELSTORE_URL``, else a ``store`` directory in the per-user data dir."""
    if url := os.environ.get("MODELSTORE_URL"):
        return url
    import platformdirs

    return str(Path(platformdirs.user_data_dir("modelstore")) / "store")


def open_storage(url: str | os.PathLike, plugins: Plugins, options: dict[str, Any] | None = None) -> Storage:
    """Ask the ``modelstore_store`` hooks for the backend that handles ``url``'s scheme."""
    url = os.fspath(url)
    match = _SCHEME.match(url)
    scheme = match.group(1).lower() if match else "file"
    storage = plugins.hook.modelstore_store(url=url, scheme=scheme, options=dict(options or {}))
    if storage is None:
        schemes = sorted({s for found in plugins.hook.modelstore_schemes() for s in found or ()})
        raise UnknownSchemeError(url, scheme, schemes, KNOWN_PLUGINS["scheme"].get(scheme))
    return storage


class ModelStore:
    """Store, version and load models in a storage backend.

    >>> store = ModelStore("./models")          # or file://, s3://bucket/prefix, gs://bucket/prefix
    >>> v = store.upload("churn", model=clf)    # -> Version(domain='churn', version=1)
    >>> clf = store.load("churn")               # latest; or version=1; or state="production"

    :param url: where the store lives; default ``$MODELSTORE_URL``, else a per-user data directory.
    :param cache_dir: where loaded files are kept (default ``$MODELSTORE_CACHE_DIR``, else the per-user cache).
    :param timeout: seconds one storage operation may take in all, retries included, before it fails
        with :class:`StorageError` (remote backends; the default is the backend's own).
    :param single_writer: the caller promises that one process at a time writes to this store, so a
        server that ignores conditional writes may still be written to (with a warning). Without it,
        such a server is refused with :class:`UnsafeServerError` before the first write.
    :param signer: an ECDSA P-256 private key (a PEM file's path, PEM text, or the key object) that
        signs every upload (default ``$MODELSTORE_SIGNING_KEY``, a path). It is read when first
        used and never written anywhere. Needs the ``signing`` extra.
    :param trusted_keys: public keys (paths, PEM text or key objects) whose signatures this reader
        trusts (default ``$MODELSTORE_TRUSTED_KEYS``, paths separated by ``os.pathsep``; ``[]``: no
        policy). With any, ``load`` and ``download`` refuse a version that is not signed over its
        current record and files by one trusted key (``require="any"``) or by every one of them
        (``require="all"``), with :class:`UntrustedSignatureError`. Without, nothing is checked.
    :param offline: answer ``load``, ``download`` and ``info`` from what this machine last saw
        (default ``$MODELSTORE_OFFLINE``): ``latest`` and states resolve to the version they named
        at the last online load here, files come from the verified cache, and no request is sent.
        A :class:`~modelstore_core.offline.StaleWarning` says so; anything not seen before raises
        :class:`~modelstore_core.offline.NotCachedError`, every other operation
        :class:`~modelstore_core.offline.OfflineError`.
    :param options: passed to the storage backend (e.g. ``endpoint_url`` for S3-compatible stores).
    """

    def __init__(
        self,
        url: str | os.PathLike | None = None,
        *,
        cache_dir: str | os.PathLike | None = None,
        timeout: float | None = None,
        single_writer: bool = False,
        signer: Any = None,
        trusted_keys: Any = None,
        require: str = "any",
        offline: bool | None = None,
        **options: Any,
    ):
        if require not in ("any", "all"):
            raise UsageError(f"require={require!r}: it is 'any' (one trusted signature suffices) or 'all' (every trusted key must sign)")
        self._signer_source = signer if signer is not None else os.environ.get("MODELSTORE_SIGNING_KEY") or None
        self._signer_key = None
        self._trust_source, self.require = trusted_keys, require
        self._policy: TrustPolicy | None | bool = False  # False: not read yet
        self.plugins = get_plugins()
        self.single_writer = bool(single_writer)
        self._writes_checked = False
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
                raise UsageError(f"timeout must be a positive number of seconds, not {timeout!r}")
            options["timeout"] = float(timeout)
        self.storage = open_storage(url if url is not None else default_url(), self.plugins, options)
        self.cache = Cache(Path(cache_dir) if cache_dir is not None else None)
        self._environment_checks: dict[tuple, EnvironmentCheck] = {}  # by (domain, version, created)
        from .offline import OfflineStorage, offline_from_env

        self.offline = offline_from_env() if offline is None else bool(offline)
        if self.offline:  # nothing may reach the backend: it is only kept for its URL
            self.storage.close()
            self.storage = OfflineStorage(self.storage.url)

    def _before_writing(self) -> None:
        """Prove once that the server's conditional writes hold (:mod:`.protocol.probe`)."""
        if self._writes_checked:
            return
        from .protocol.probe import ensure_conditional_writes

        verdict = ensure_conditional_writes(self.storage, self.cache.root)
        if not verdict.ok:
            error = UnsafeServerError(self.storage.url, verdict.missing)
            if not self.single_writer:
                raise error
            import warnings

            warnings.warn(
                f"{error.url}: conditional writes are not honoured; writing anyway (single_writer=True)", RuntimeWarning, stacklevel=3
            )
        self._writes_checked = True

    def _private_key(self, key: Any = None):
        """The signing key: ``key`` if given, else the store's signer (loaded once); ``None`` when neither."""
        from .signing import load_private_key, resolve_key_path

        if key is not None:
            return load_private_key(resolve_key_path(key) if isinstance(key, str) else key)
        if self._signer_source is None:
            return None
        if self._signer_key is None:
            source = self._signer_source
            self._signer_key = load_private_key(resolve_key_path(source) if isinstance(source, str) else source)
        return self._signer_key

    @property
    def trust_policy(self) -> TrustPolicy | None:
        """The trust policy of ``trusted_keys``/``require`` (``None`` when there is none); keys read on first use."""
        if self._policy is False:
            from .signing import policy_from

            self._policy = policy_from(self._trust_source, self.require)
        return self._policy  # type: ignore[return-value]

    def _check_trust(self, record) -> None:
        if self.trust_policy is not None:
            if self.offline:
                from .offline import OfflineError, offline_hint

                raise OfflineError(
                    f"{offline_hint(self.url)}, and a trust policy is set: signatures live in the store and cannot"
                    " be checked offline; load online, or open the store with trusted_keys=[] to load without the policy"
                )
            self.trust_policy.check(self.storage, record)

    @property
    def url(self) -> str:
        return self.storage.url

    def __repr__(self) -> str:
        return f"ModelStore({self.storage.url!r})"

    def close(self) -> None:
        self.storage.close()

    def __enter__(self) -> ModelStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing -------------------------------------------------------------------

    def upload(
        self,
        domain: str,
        model: Any = None,
        *,
        files: list[str | os.PathLike] | None = None,
        models: dict[str, Any] | None = None,
        part_options: dict[str, dict[str, Any]] | None = None,
        extras: list[str | os.PathLike] | None = None,
        tags: dict[str, str] | None = None,
        metrics: dict[str, float] | None = None,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        input_example: Any = None,
        progress: ProgressCallback | None = None,
        **options: Any,
    ) -> Version:
        """Store ``model`` (or raw ``files``, or several ``models``) as the next version of ``domain``.

        :param model: a model object that an installed plugin serializes.
        :param files: instead of ``model``: files or directories to store as they are.
        :param models: instead of ``model``: several models, ``{"encoder": enc, "classifier": clf}``,
            each serialized by its own plugin into the folder of its name, in one version
            (:mod:`~modelstore_core.parts`); ``part_options={"encoder": {...}}`` adds options for one part.
        :param extras: more files stored beside the model, under ``extras/``.
        :param tags: labels recorded with the version: strings, booleans or finite numbers (kept as given).
        :param metrics: how good the version is (``{"auc": 0.91, "rmse": 3.2}``): finite numbers only
            (numpy/torch scalars are converted; NaN and infinities are refused with :class:`UsageError`).
        :param params: the settings that made it (strings, finite numbers, booleans, None), added over
            the hyperparameters the flavor plugin records (which are the params by default).
        :param data: datasets the version was trained or evaluated on (``{"train": X_train}``: pandas
            DataFrames, numpy arrays, torch tensors, file or directory paths): their shape, dtypes and
            a sha256 of their content are recorded, never the data (:mod:`modelstore_core.fingerprint`).
        :param input_example: a sample input (DataFrame, array, tensor, dict of arrays) whose column
            names, dtypes and shapes are recorded as the version's input signature (never its values);
            without it, the signature the flavor plugin knows (scikit-learn's ``feature_names_in_``...).
        :param progress: called as ``progress(done_bytes, total_bytes)`` while files are stored.
        :param options: passed to the serializing plugin.
        With a ``signer``, the version's signature is stored right after its record, before the
        latest hint moves.

        :return: the committed :class:`Version`; ``bytes_written`` says how many artifact bytes were
            new to the store (0 when every file was already there).
        """
        from .metrics import check_metrics, check_params

        check_name(domain, "domain name")
        tags = check_tags(tags)
        recorded = {"metrics": check_metrics(metrics), "params": check_params(params)}
        given = [name for name, value in (("model=", model), ("files=", files), ("models=", models)) if value is not None]
        if len(given) != 1:
            got = " and ".join(given) if given else "neither model= nor files= nor models="
            got = "both " + got if len(given) == 2 else "all of " + got if given else got
            raise UsageError(
                f"upload() got {got}: pass a model (upload(domain, model=clf)), raw files (upload(domain, files=[...]))"
                " or several models (upload(domain, models={'encoder': enc, 'classifier': clf}))"
            )
        if part_options is not None and models is None:
            raise UsageError("part_options= goes with models=: it gives options to some of the parts")
        if input_example is not None:
            from .signature import signature_from_example

            recorded["signature"] = signature_from_example(input_example)
        if data is not None:
            from .fingerprint import fingerprints

            recorded["data"] = fingerprints(data)
        _check_recordable(recorded)
        from .upload import RawFiles

        if files is not None:
            if isinstance(files, (str, os.PathLike)):
                files = [files]
            model = RawFiles([Path(f) for f in files])
        if models is not None:
            from .parts import Parts

            model = Parts(models, part_options)
        return self._upload(domain, model, extras, tags, options, progress, recorded)

    def _upload(
        self, domain, model, extras, tags, options, progress, recorded=None, metadata: dict[str, Any] | None = None
    ) -> Version:
        """:meth:`upload` past its argument checks; ``recorded`` are the checked metrics, params, signature
        and data; ``metadata`` goes into the record (an import's)."""
        from .upload import upload

        private_key = self._private_key()  # a bad key fails here, before anything is written
        after_commit = None
        if private_key is not None:
            from .signing import write_signature

            def after_commit(record) -> None:
                write_signature(self.storage, record, private_key)

        self._before_writing()
        record, written = upload(
            self.storage, self.plugins, domain, model, extras, tags, options, progress, after_commit, recorded, metadata
        )
        version = Version(domain, record.version, record)
        version.bytes_written = written
        return version

    def set_state(self, domain: str, version: int, state: str) -> None:
        """Point ``state`` (e.g. ``"production"``) at ``version``, atomically replacing where it pointed."""
        self._before_writing()
        commit.set_state(self.storage, check_name(domain, "domain name"), check_version(version), check_name(state, "state name"))

    def remove_state(self, domain: str, state: str) -> None:
        self._before_writing()
        commit.remove_state(self.storage, check_name(domain, "domain name"), check_name(state, "state name"))

    def delete(self, domain: str, version: int) -> None:
        """Remove a version: it leaves listings, ``latest`` falls back, states on it are cleared.
        Its number is never reused; ``gc()`` reclaims files no other version uses."""
        self._before_writing()
        commit.delete_version(self.storage, check_name(domain, "domain name"), check_version(version))

    def delete_domain(self, domain: str) -> list[int]:
        """Delete every version of ``domain``, its states and its history: it leaves ``list_domains()``.

        Returns the deleted version numbers. Numbering starts again at 1 if the domain is used again;
        ``gc()`` reclaims the files no other version uses.
        """
        self._before_writing()
        return commit.delete_domain(self.storage, check_name(domain, "domain name"))

    # --- between stores -------------------------------------------------------------

    def copy_to(
        self,
        other: ModelStore | str | os.PathLike,
        domain: str | None = None,
        versions: list[int] | None = None,
        *,
        states: bool = True,
        progress: ProgressCallback | None = None,
        select: list[str] | None = None,
    ) -> CopyReport:
        """Copy versions into ``other`` (a store or its URL), keeping their numbers, records (so their
        metadata, tags and signatures), and with ``states`` the states that name them.

        Every domain by default; one ``domain``; some ``versions`` of it; or ``select``, a list of
        ``"DOMAIN"``, ``"DOMAIN:VERSION"`` and ``"DOMAIN@STATE"``. Only objects ``other`` lacks are
        transferred, each verified by sha256 before it becomes visible there. Running it again
        (after an interruption, or to pick up new versions) finishes the job and copies nothing
        twice. A number that ``other`` already uses for something else is reported in
        ``report.conflicts``, never overwritten.
        """
        from .replicate import Copier, Selector

        target = other if isinstance(other, ModelStore) else ModelStore(other)
        if select is not None and (domain is not None or versions is not None):
            raise UsageError("copy_to() takes select= or domain=/versions=, not both")
        if versions is not None and domain is None:
            raise UsageError("copy_to(versions=...) needs the domain too")
        selection = [Selector.parse(item) for item in select] if select is not None else None
        if domain is not None:
            check_name(domain, "domain name")
            selection = [Selector(domain)] if versions is None else [Selector(domain, version=check_version(n)) for n in versions]
        copier = Copier(self.storage, target.storage, states=states, progress=progress, before_writing=target._before_writing)
        return copier.run(selection)

    def mirror_to(
        self,
        other: ModelStore | str | os.PathLike,
        *,
        states: list[str] | None = None,
        delete: bool = False,
        progress: ProgressCallback | None = None,
    ) -> CopyReport:
        """Bring ``other``, a read-only copy of this store, in step: new versions, states where they
        point now, and with ``delete`` the removal of versions, states and domains this store no
        longer has. With ``states`` (e.g. ``["production"]``) only the versions those states name.

        A run with nothing new costs listings and a read of each domain's states on each side, and
        transfers nothing: a version the destination lists with a record of the source's size is
        taken as already there (use :meth:`copy_to` to compare records byte for byte).
        """
        from .replicate import Copier

        target = other if isinstance(other, ModelStore) else ModelStore(other)
        state_filter = [check_name(name, "state name") for name in states] if states else None
        copier = Copier(
            self.storage, target.storage, states=True, delete=delete, trust_listing=True,
            progress=progress, before_writing=target._before_writing,
        )
        return copier.run(None, state_filter=state_filter)

    def sign(self, domain: str, version: int | None = None, *, state: str | None = None, key: Any = None) -> SignatureInfo:
        """Sign an existing version (latest by default) with ``key`` (a private key's path, PEM text,
        the key object, or the name of a key made by ``modelstore keys create``), else the store's
        ``signer``. Another signer's signatures stay: a version may carry several.

        Signs the record as it is now: check it first (``verify``) if the store may have been tampered with.
        """
        from .signing import SignatureInfo, write_signature

        private_key = self._private_key(key)
        if private_key is None:
            raise UsageError(
                "no signing key: pass key= (`modelstore sign --key PATH`), open the store with signer=,"
                " or set $MODELSTORE_SIGNING_KEY (`modelstore keys create NAME` makes a key)"
            )
        record = self.info(domain, version, state=state).record
        self._before_writing()
        doc = write_signature(self.storage, record, private_key)
        if self.storage.stat(keys.version_key(record.domain, record.version)) is None:  # deleted meanwhile
            commit.delete_signatures(self.storage, record.domain, record.version)
            raise VersionNotFoundError(record.domain, record.version)
        policy = self.trust_policy
        import json

        return SignatureInfo(doc.keyid, doc.signed, True, "", policy is not None and doc.keyid in policy.keys, json.dumps(doc.bundle))

    def signatures(self, domain: str, version: int | None = None, *, state: str | None = None) -> list[SignatureInfo]:
        """Who signed a version (latest by default): each signature document, checked against the key it
        names (``valid``) and against the trust policy (``trusted``). Needs the ``signing`` extra
        when the version has signatures."""
        from .signing import describe_signatures

        record = self.info(domain, version, state=state).record
        return describe_signatures(self.storage, record, self.trust_policy)

    def gc(self, *, grace: float = 3600.0, dry_run: bool = False) -> GCReport:
        """Remove what interrupted uploads and deleted versions left behind.

        Never touches a committed version or an upload in progress (on another machine, one
        younger than ``grace`` seconds).
        """
        from .gc import collect_garbage

        return collect_garbage(self.storage, grace=grace, dry_run=dry_run)

    def verify(
        self,
        domain: str | None = None,
        version: int | None = None,
        *,
        repair: bool = False,
        signatures: bool = False,
        progress: ProgressCallback | None = None,
    ) -> VerifyReport:
        """Re-hash stored files against their records (every version, a domain's, or one version's)
        and check records and states; every problem is reported, none stops the check.

        :param repair: delete corrupted objects (uploading the same file again restores them) and
            states that point at deleted versions. Corrupt records are only reported.
        :param signatures: also check every signature document against the key it names (an
            invalid one is a ``bad-signature`` problem) and, with a trust policy, each version
            against it (``untrusted``); ``report.signers`` says who validly signed each version.
        """
        from .verify import verify_store

        if domain is not None:
            check_name(domain, "domain name")
        if version is not None:
            if domain is None:
                raise UsageError("verify(version=...) needs the domain too")
            check_version(version)
        if repair:
            self._before_writing()
        return verify_store(
            self.storage,
            domain,
            version,
            repair=repair,
            progress=progress,
            signatures=signatures,
            policy=self.trust_policy if signatures else None,
        )

    # --- reading ------------------------------------------------------------------------

    def list_domains(self) -> list[str]:
        return read.list_domains(self.storage)

    def list_versions(self, domain: str, limit: int | None = None) -> list[Version]:
        """All versions of ``domain``, newest first; metadata is fetched when first accessed.

        :param limit: only the ``limit`` newest, found from the latest without listing the whole
            domain (a listing from just below it; on a local store, one ``stat`` per version).
        """
        check_name(domain, "domain name")
        if limit is None:
            found = read.list_versions(self.storage, domain)
        else:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise UsageError(f"limit must be a positive number of versions, not {limit!r}")
            found = read.newest_versions(self.storage, domain, limit)
        return [self._version(domain, n) for n, _ in found]

    def latest(self, domain: str) -> Version:
        check_name(domain, "domain name")
        n, _ = read.latest(self.storage, domain)
        return self._version(domain, n)

    def find(
        self,
        domain: str | None = None,
        where: str | list[str] | None = None,
        sort: str | list[str] | None = None,
        limit: int | None = None,
        *,
        problems: list[str] | None = None,
    ) -> list[Version]:
        """The versions of ``domain`` (of every domain when ``None``) that match every filter in ``where``,
        ordered by ``sort``, at most ``limit`` of them.

        >>> store.find("churn", where=["metrics.auc>0.9", "tags.team=risk"], sort="-metrics.auc", limit=3)

        :param where: filters ``FIELD OP VALUE``: fields ``version``, ``created``, ``flavor``, ``format``,
            ``files``, ``size``, ``state``, ``tags.NAME``, ``metrics.NAME``, ``params.NAME``, ``git.commit``
            (``=`` is a prefix match), ``git.dirty``; operators ``= != > >= < <=`` and ``~`` (contains).
            A version without the field never matches a filter on it.
        :param sort: field names, ``-`` before one for descending (``"-metrics.auc"``); versions without
            the field come last. Ties, and no sort at all: by domain, then newest first.
        :param problems: a list to append what the query found wrong and worked around (a summary that
            lagged or was damaged, repaired from the records; a corrupt record, left out); without it
            each is a :class:`RuntimeWarning`.
        :raises UsageError: an expression names an unknown field or operator, or a value of the wrong kind.

        Reads a summary kept beside the records (:mod:`modelstore_core.protocol.summary`), checked
        against the listing of versions, rather than every record: a domain costs one listing, one
        read per 1,000 versions, and one read of its states if a filter names a state. Each returned
        :class:`Version` carries what the summary holds of it as ``summary``; its record is read on
        first access as usual.
        """
        from .search import Query, search

        query = Query.parse(where, sort, limit)
        found: list[str] = []
        hits = search(self.storage, domain, query, problems=found)
        if problems is not None:
            problems.extend(found)
        else:
            import warnings

            for problem in found:
                warnings.warn(problem, RuntimeWarning, stacklevel=2)
        versions = []
        for hit in hits:
            v = self._version(hit.domain, hit.version)
            v.summary = hit.entry
            versions.append(v)
        return versions

    def states(self, domain: str) -> dict[str, int]:
        """``{"production": 3, ...}``."""
        check_name(domain, "domain name")
        states = read.read_states(self.storage, domain)
        if not states and not read.domain_exists(self.storage, domain):
            raise DomainNotFoundError(domain)
        return {name: s.version for name, s in sorted(states.items())}

    def info(self, domain: str, version: int | None = None, *, state: str | None = None) -> Version:
        """The version (latest by default) with its metadata loaded.

        Online, which version ``latest`` or ``state`` named is remembered on this machine for
        offline loads; offline, it is answered from that memory and the cache alone.
        """
        if self.offline:
            return self._offline_version(domain, version, state)
        try:
            v = self.resolve(domain, version, state)
            try:
                v.record  # noqa: B018 - fetch now, raising here if it is gone
            except VersionNotFoundError:
                if state is not None:
                    raise DanglingStateError(v.domain, state, v.version) from None
                raise
        except StorageError as exc:
            advice = None if isinstance(exc, (KeyNotFoundError, UnsafeServerError)) else self._offline_advice(domain, version, state)
            if advice is None:
                raise
            raise StorageError(f"{exc}; {advice}") from exc
        if version is None:
            self.cache.seen_names(self.url).remember(v.domain, state, v.version)
        return v

    def _offline_version(self, domain: str, version: int | None, state: str | None) -> Version:
        """What this machine last saw of ``domain``/``version``/``state`` (no request)."""
        from .offline import NotCachedError, StaleWarning, offline_hint

        check_name(domain, "domain name")
        if version is not None and state is not None:
            raise UsageError(f"got version={version!r} and state={state!r}: a version is named by one of them, not both")
        if version is None:
            what = "latest" if state is None else f"state {check_name(state, 'state name')!r}"
            seen = self.cache.seen_names(self.url).lookup(domain, state)
            if seen is None:
                raise NotCachedError(
                    f"{offline_hint(self.url)}, and {what} of {domain!r} was never resolved on this machine:"
                    " load it once with the store reachable, or name a cached version"
                )
            version, when = seen
            import warnings

            warnings.warn(
                f"offline: {what} of {domain!r} is version {version} as this machine last saw it ({when});"
                " the store was not asked and may have moved on since",
                StaleWarning,
                stacklevel=3,
            )
        record = self.cache.cached_record(self.storage, domain, check_version(version))
        if record is None:
            raise NotCachedError(
                f"{offline_hint(self.url)}, and version {version} of {domain!r} is not in this machine's cache:"
                " load it once with the store reachable"
            )
        return Version(domain, version, record)

    def _offline_advice(self, domain: str, version: int | None, state: str | None) -> str | None:
        """For an error reaching the store: how to load this request offline, if this machine can."""
        seen = (version, "") if version is not None else self.cache.seen_names(self.url).lookup(domain, state)
        if seen is not None and self.cache.cached_record(self.storage, domain, seen[0]) is not None:
            return (
                f"this machine has version {seen[0]} of {domain!r} cached: load it without the store with"
                " MODELSTORE_OFFLINE=1 (ModelStore(url, offline=True)); the answer may be stale"
            )
        return None

    def resolve(self, domain: str, version: int | None = None, state: str | None = None) -> Version:
        """Which version ``version``/``state``/latest names (metadata not yet fetched)."""
        check_name(domain, "domain name")
        if version is not None and state is not None:
            raise UsageError(f"got version={version!r} and state={state!r}: a version is named by one of them, not both")
        if state is not None:
            version = read.state_version(self.storage, domain, check_name(state, "state name"))
        if version is None:
            return self.latest(domain)
        return self._version(domain, check_version(version))

    def check_input(
        self, domain: str, data: Any, version: int | None = None, *, state: str | None = None, strict: bool = False
    ) -> InputCheck:
        """Whether ``data`` (a pandas DataFrame, numpy array, torch tensor or dict of them) matches the
        input signature recorded with a version (latest by default): missing or extra columns,
        column order, dtypes and shapes. Only ``data``'s names, dtypes and shape are read.

        :param strict: raise :class:`InputMismatchError` listing the problems instead of returning them.
        :return: an :class:`~modelstore_core.signature.InputCheck` (``.ok``, ``.problems``).
        :raises UsageError: the version records no input signature.
        """
        from .signature import InputCheck, check_input

        v = self.info(domain, version, state=state)
        if v.signature is None:
            raise UsageError(
                f"version {v.version} of {v.domain!r} records no input signature: its flavor plugin does not know one;"
                " upload with input_example=X to record one"
            )
        check = InputCheck(v.domain, v.version, v.signature, check_input(v.signature, data))
        if strict and not check.ok:
            raise InputMismatchError(v.domain, v.version, check.problems)
        return check

    def compare(self, domain: str, versions: list[int], *, directions: dict[str, str] | None = None) -> Comparison:
        """Versions of ``domain`` side by side (``modelstore compare``): metrics (the best value of
        each marked), params, tags, states, sizes, flavor and framework, dependencies, git, data
        fingerprints. Records are read concurrently.

        :param directions: ``{"metric": "higher" | "lower"}``: which values are better, for metrics
            whose name does not say (:func:`~modelstore_core.compare.metric_direction`).
        :return: a :class:`~modelstore_core.compare.Comparison` (``.to_dict()`` is plain JSON).
        """
        from .compare import check_directions, compare_records

        check_name(domain, "domain name")
        directions = check_directions(directions)
        if isinstance(versions, (int, str)) or not versions:
            raise UsageError("compare() takes a list of version numbers, e.g. compare('churn', [3, 5, 7])")
        wanted = [self._version(domain, check_version(int(v) if isinstance(v, Version) else v)) for v in versions]
        errors: list[ModelStoreError] = []
        found = {v.version: v for v in self.fetch_metadata(wanted, errors)}
        if errors:
            raise errors[0]
        for v in wanted:
            if v.version not in found:
                raise VersionNotFoundError(domain, v.version)
        return compare_records([found[v.version].record for v in wanted], self.states(domain), directions)

    def environment(self, domain: str, version: int | None = None, *, state: str | None = None) -> Environment:
        """The environment a version (latest by default) was stored in: Python, platform and the
        distributions it needs, pinned as recorded; ``.requirements_txt()`` is a file for
        ``pip install -r`` (``modelstore env``)."""
        from .environment import environment

        return environment(self.info(domain, version, state=state).record)

    def check_environment(self, domain: str, version: int | None = None, *, state: str | None = None) -> EnvironmentCheck:
        """What differs between this environment and the one a version was stored in: Python and
        every recorded distribution, each marked whether it ``matters`` (Python's major.minor, or
        the major.minor of the flavor's framework and serializer: what ``load`` warns about)."""
        from .environment import check_environment

        return check_environment(self.info(domain, version, state=state).record)

    def _check_load_environment(self, record, strict: bool) -> None:
        """Warn once per version, in one line, when what matters to load it differs here; raise with ``strict``.

        Checked once per version and store object (records never change; a version number reused
        after ``delete_domain`` has another creation time)."""
        from .environment import EnvironmentWarning, check_environment
        from .upload import RAW_FILES

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
            import warnings

            shown = "; ".join(str(d) for d in check.mattering)
            warnings.warn(
                f"version {record.version} of {record.domain!r} was stored with another environment: {shown}"
                f" (`modelstore env {record.domain} {record.version}` prints its requirements)",
                EnvironmentWarning,
                stacklevel=3,
            )

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
        **options: Any,
    ) -> Any:
        """Load a version back into memory (latest by default).

        Every file is verified against its sha256 before the owning plugin deserializes it.
        Raw-file versions load as a list of local paths; versions of several models (``upload(d,
        models={...})``) as ``{name: model}``, or one model with ``part="classifier"``.

        :param trust: allow formats that can execute code when loaded (pickle). Only for
            artifacts from a source you trust.
        :param strict_environment: raise :class:`EnvironmentMismatchError` (before anything is fetched)
            instead of warning once (:class:`~modelstore_core.environment.EnvironmentWarning`) when
            Python's major.minor or the major.minor of the flavor's framework or serializer differs
            from the version's; patch releases never count (:mod:`modelstore_core.environment`).
        :param progress: called as ``progress(done_bytes, total_bytes)`` while files are fetched and verified.
        :param part: of a version of several models, the one to load.
        :param part_options: of a version of several models, options for some parts' plugins
            (``{"encoder": {"model": Net}}``), beside ``options``, which go to every part.
        :param options: passed to the deserializing plugin.
        :raises UntrustedSignatureError: a trust policy is set and the version is not signed by the
            trusted keys it requires (checked before any file is fetched).
        """
        from .upload import RAW_FILES

        record = self.info(domain, version, state=state).record
        if record.parts:
            from .parts import check_load

            check_load(record, part, part_options)  # before anything is fetched
        elif part is not None or part_options is not None:
            raise UsageError(
                f"version {record.version} of {record.domain!r} holds one model, not parts: load it without part=/part_options="
            )
        self._check_trust(record)
        self._check_load_environment(record, strict_environment)
        if not (record.flavor.safe or trust):
            if record.flavor.name == RAW_FILES:  # files no plugin vouches for (an import of pickles)
                raise UntrustedArtifactError(
                    f"version {record.version} of {record.domain!r} is marked unsafe (its files can run code when"
                    " loaded, e.g. pickles imported from the original modelstore); pass trust=True to load()"
                    " only if you trust whoever could write to this store"
                )
        view = self._offline_view(record, progress) if self.offline else self.cache.materialize(self.storage, record, progress)
        model_files = [f.path for f in record.model_files]
        if record.parts:
            from .parts import load_parts

            return load_parts(self.plugins, record, view, part, {**options, "trust": trust}, part_options)
        if record.flavor.name == RAW_FILES:
            view.verify_rest()
            return [view.directory / name for name in model_files]
        result = _deserialize(self.plugins, record, view, model_files, {**options, "trust": trust})
        if result is None:
            raise MissingPluginError(record.flavor.name, record.flavor.plugin or KNOWN_PLUGINS["flavor"].get(record.flavor.name))
        return result

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
        """Write the version's verified files into directory ``to`` (default ``./<domain>-<version>``).

        Model files land at the top, extras under ``extras/``. Nothing is left in ``to`` if any file
        fails verification. A file of the version that already exists in ``to`` raises
        :class:`TargetExistsError` (before anything is fetched) unless ``overwrite=True``. With a
        trust policy, a version not signed as it requires raises :class:`UntrustedSignatureError`
        before anything is written.
        """
        v = self.info(domain, version, state=state)
        self._check_trust(v.record)
        cached = self._offline_files(v.record) if self.offline else None
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
                write_files(self.storage, v.files, staging, self.cache, progress)
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

    def _offline_view(self, record, progress: ProgressCallback | None):
        view = self.cache.intact_view(self.storage, record, progress)
        if view is None:
            raise self._not_cached(record)
        return view

    def _offline_files(self, record) -> dict[str, Path]:
        found = self.cache.cached_files(self.storage, record)
        if found is None:
            raise self._not_cached(record)
        return found

    def _not_cached(self, record):
        from .offline import NotCachedError, offline_hint

        return NotCachedError(
            f"{offline_hint(self.url)}, and the cached files of version {record.version} of {record.domain!r}"
            " are missing or changed: load it once with the store reachable"
        )

    # --- helpers ------------------------------------------------------------------------

    def fetch_metadata(self, items: list[Version], errors: list[CorruptRecordError] | None = None) -> list[Version]:
        """Load the metadata of many versions concurrently; returns those still in the store whose
        record is valid. The :class:`CorruptRecordError` of each other one is appended to ``errors``."""
        records, corrupt = read.read_records(self.storage, [(v.domain, v.version) for v in items if v._record is None])
        if errors is not None:
            errors.extend(corrupt)
        fetched = {(r.domain, r.version): r for r in records}
        for v in items:
            if v._record is None and (v.domain, v.version) in fetched:
                v._record = fetched[(v.domain, v.version)]
        return [v for v in items if v._record is not None]

    def _version(self, domain: str, n: int) -> Version:
        return Version(domain, n, fetch=lambda: read.read_record(self.storage, domain, n))


def _check_recordable(recorded: dict[str, Any]) -> None:
    """What an example or a dataset gave is within the record's limits (100,000 columns, names of
    1,024 characters...), else :class:`UsageError` before anything is written."""
    from .protocol.records import parse_dataset, parse_signature

    try:
        if recorded.get("signature"):
            parse_signature(recorded["signature"], "input_example")
        for name, entry in (recorded.get("data") or {}).items():
            parse_dataset(name, entry, "data")
    except CorruptRecordError as exc:
        raise UsageError(f"{exc.field} {exc.problem}: it cannot be recorded") from None


def _deserialize(plugins: Plugins, record, view: VersionFiles, model_files: list[str], options: dict[str, Any]) -> Any:
    """Ask the flavor plugins to rebuild the version from its files; every file is verified
    before anything is returned.

    Deserializers that take ``verified`` are asked first, with files not hashed yet: they read
    them through ``verified.open`` (verified in that same pass) or ``verified.path``. The others
    run only once every file was hashed. A file no deserializer read is hashed before returning.
    """
    caller = plugins.hook.modelstore_deserialize
    streaming = {impl.plugin for impl in caller.get_hookimpls() if "verified" in impl.argnames}
    others = [impl.plugin for impl in caller.get_hookimpls() if impl.plugin not in streaming]
    kwargs = {"flavor": record.flavor, "directory": view.directory, "files": model_files, "options": options, "verified": view}
    if streaming and view.pending:
        try:
            result = plugins.manager.subset_hook_caller("modelstore_deserialize", others)(**kwargs)
        except Exception as exc:
            if isinstance(exc, CorruptArtifactError) or not isinstance(exc, (ModelStoreError, TypeError)):
                view.check_after_failure()  # a damaged file may be the real cause: IntegrityError names it
            raise
        view.verify_rest()
        if result is not None:
            return result
        return plugins.manager.subset_hook_caller("modelstore_deserialize", list(streaming))(**kwargs)
    view.verify_rest()  # no deserializer verifies as it reads, or nothing is left to verify
    return caller(**kwargs)


__all__ = ["ModelStore"]
