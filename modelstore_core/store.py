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
    MissingPluginError,
    ModelStoreError,
    TargetExistsError,
    UnknownSchemeError,
    UnsafeServerError,
    UsageError,
    VersionNotFoundError,
)
from .materialize import Cache, VersionFiles, write_files
from .names import check_name, check_tags, check_version
from .plugins import KNOWN_PLUGINS, Plugins, get_plugins
from .progress import ProgressCallback
from .protocol import commit, keys, read
from .storage import Storage
from .version import Version

if TYPE_CHECKING:  # imported where used: `import modelstore_core` + a listing stays fast
    from .gc import GCReport
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
        extras: list[str | os.PathLike] | None = None,
        tags: dict[str, str] | None = None,
        progress: ProgressCallback | None = None,
        **options: Any,
    ) -> Version:
        """Store ``model`` (or raw ``files``) as the next version of ``domain``.

        :param model: a model object that an installed plugin serializes.
        :param files: instead of ``model``: files or directories to store as they are.
        :param extras: more files stored beside the model, under ``extras/``.
        :param tags: labels recorded with the version: strings, booleans or finite numbers (kept as given).
        :param progress: called as ``progress(done_bytes, total_bytes)`` while files are stored.
        :param options: passed to the serializing plugin.
        With a ``signer``, the version's signature is stored right after its record, before the
        latest hint moves.

        :return: the committed :class:`Version`; ``bytes_written`` says how many artifact bytes were
            new to the store (0 when every file was already there).
        """
        check_name(domain, "domain name")
        tags = check_tags(tags)
        if (model is None) == (files is None):
            given = "both model= and files=" if model is not None else "neither model= nor files="
            raise UsageError(f"upload() got {given}: pass a model (upload(domain, model=clf)) or raw files (upload(domain, files=[...]))")
        from .upload import RawFiles, upload

        if files is not None:
            if isinstance(files, (str, os.PathLike)):
                files = [files]
            model = RawFiles([Path(f) for f in files])
        private_key = self._private_key()  # a bad key fails here, before anything is written
        after_commit = None
        if private_key is not None:
            from .signing import write_signature

            def after_commit(record) -> None:
                write_signature(self.storage, record, private_key)

        self._before_writing()
        record, written = upload(self.storage, self.plugins, domain, model, extras, tags, options, progress, after_commit)
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

    def states(self, domain: str) -> dict[str, int]:
        """``{"production": 3, ...}``."""
        check_name(domain, "domain name")
        states = read.read_states(self.storage, domain)
        if not states and not read.domain_exists(self.storage, domain):
            raise DomainNotFoundError(domain)
        return {name: s.version for name, s in sorted(states.items())}

    def info(self, domain: str, version: int | None = None, *, state: str | None = None) -> Version:
        """The version (latest by default) with its metadata loaded."""
        v = self.resolve(domain, version, state)
        try:
            v.record  # noqa: B018 - fetch now, raising here if it is gone
        except VersionNotFoundError:
            if state is not None:
                raise DanglingStateError(v.domain, state, v.version) from None
            raise
        return v

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

    def load(
        self,
        domain: str,
        version: int | None = None,
        *,
        state: str | None = None,
        trust: bool = False,
        progress: ProgressCallback | None = None,
        **options: Any,
    ) -> Any:
        """Load a version back into memory (latest by default).

        Every file is verified against its sha256 before the owning plugin deserializes it.
        Raw-file versions load as a list of local paths.

        :param trust: allow formats that can execute code when loaded (pickle). Only for
            artifacts from a source you trust.
        :param progress: called as ``progress(done_bytes, total_bytes)`` while files are fetched and verified.
        :param options: passed to the deserializing plugin.
        :raises UntrustedSignatureError: a trust policy is set and the version is not signed by the
            trusted keys it requires (checked before any file is fetched).
        """
        from .upload import RAW_FILES

        record = self.info(domain, version, state=state).record
        self._check_trust(record)
        view = self.cache.materialize(self.storage, record, progress)
        model_files = [f.path for f in record.model_files]
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
        target = Path(to) if to is not None else Path.cwd() / f"{v.domain}-{v.version}"
        if not overwrite:
            existing = [f.path for f in v.files if os.path.lexists(target / f.path)]
            if existing:
                raise TargetExistsError(str(target), existing)
        target.mkdir(parents=True, exist_ok=True)
        staging = target / f".modelstore-{os.urandom(16).hex()}.part"
        try:
            write_files(self.storage, v.files, staging, self.cache, progress)
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
