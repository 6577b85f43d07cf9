"""The :class:`ModelStore` API: a thin facade over the upload path (:mod:`.upload`), the load
path (:mod:`.load`), the version protocol (:mod:`.protocol`) and the features built on them.

Each method checks and resolves its arguments and hands over. Modules of features that an upload
or a load does not need (search, compare, copy, gc, verify, signing) are imported when first used,
and so is the load path (:attr:`ModelStore.loader`): an upload in a fresh process does not import
it. The upload path is imported with the package: on their own, its modules' allocations would
add a collection of the youngest generation to an upload's first call, and in a process that has
just imported scikit-learn one more such collection sets off a full one (about 50 ms).
"""

from __future__ import annotations

import os
import warnings
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cache import Cache
from .errors import (
    CorruptRecordError,
    InputMismatchError,
    ModelStoreError,
    UnsafeServerError,
    UsageError,
    VersionNotFoundError,
)
from .fields import recorded_fields
from .importtime import collection_paused
from .names import check_name, check_version
from .offline import OfflineStorage, offline_from_env
from .plugins import get_plugins, open_storage, open_transport
from .progress import ProgressCallback
from .protocol import commit, read
from .protocol.probe import ensure_conditional_writes
from .upload import Uploader, what_to_store
from .version import Version

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .compare import Comparison
    from .environment import Environment, EnvironmentCheck
    from .input_signature import InputCheck
    from .lineage import LineageNode
    from .load import Loader
    from .protocol.feed import Markers
    from .protocol.gc import GCReport
    from .protocol.records import Event
    from .replicate import CopyReport
    from .retention import RetentionPolicy, RetentionReport
    from .signing import SignatureInfo, Signer, TrustPolicy
    from .verify import VerifyReport


def default_url() -> str:
    """``$MODELSTORE_URL``, else a ``store`` directory in the per-user data dir."""
    if url := os.environ.get("MODELSTORE_URL"):
        return url
    import platformdirs

    return str(Path(platformdirs.user_data_dir("modelstore")) / "store")


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
        self.storage = open_storage(self.plugins, url if url is not None else default_url(), options)
        self.cache = Cache(Path(cache_dir) if cache_dir is not None else None)
        self.offline = offline_from_env() if offline is None else bool(offline)
        if self.offline:  # nothing may reach the backend: it is only kept for its URL
            self.storage.close()
            self.storage = OfflineStorage(self.storage.url)

    @cached_property
    def uploader(self) -> Uploader:
        """The upload path."""
        return Uploader(self.storage, self.plugins, self.cache, signer=self._signer, before_writing=self._before_writing)

    @cached_property
    def loader(self) -> Loader:
        """The load path (built on first use, with the modules it imports)."""
        with collection_paused():
            from .load import Loader

        return Loader(self.storage, self.plugins, self.cache, offline=self.offline, policy=lambda: self.trust_policy)

    @cached_property
    def _markers(self) -> Markers:
        """Upload markers seen finished (``changes()`` repairs past the others)."""
        from .protocol.feed import Markers

        return Markers()

    def _before_writing(self) -> None:
        """Prove once that the server's conditional writes hold (:mod:`.protocol.probe`)."""
        if self._writes_checked:
            return
        verdict = ensure_conditional_writes(self.storage)
        if not verdict.ok:
            error = UnsafeServerError(self.storage.url, verdict.missing)
            if not self.single_writer:
                raise error
            warnings.warn(
                f"{error.url}: conditional writes are not honoured; writing anyway (single_writer=True)", RuntimeWarning, stacklevel=3
            )
        self._writes_checked = True

    def _private_key(self, key: Any = None):
        """The signing key: ``key`` if given, else the store's signer (loaded once); ``None`` when neither."""
        if key is None and self._signer_source is None:
            return None
        from .signing import load_private_key, resolve_key_path

        if key is not None:
            return load_private_key(resolve_key_path(key) if isinstance(key, str) else key)
        if self._signer_key is None:
            source = self._signer_source
            self._signer_key = load_private_key(resolve_key_path(source) if isinstance(source, str) else source)
        return self._signer_key

    def _signer(self, key: Any = None) -> Signer | None:
        """What signs this store's writes: ``key``'s, else the store's signer's (``None`` when neither),
        with this machine's memory of the pointers it signed."""
        private_key = self._private_key(key)
        if private_key is None:
            return None
        from .signing import Signer

        return Signer(private_key, self.cache.seen_pointers(self.storage.url))

    @property
    def trust_policy(self) -> TrustPolicy | None:
        """The trust policy of ``trusted_keys``/``require`` (``None`` when there is none); keys read on first use."""
        if self._policy is False:
            if self._trust_source is None and not os.environ.get("MODELSTORE_TRUSTED_KEYS"):
                self._policy = None  # no keys given or in the environment: no policy, and the signing module stays unimported
            else:
                from .signing import policy_from

                self._policy = policy_from(self._trust_source, self.require)
        return self._policy  # type: ignore[return-value]

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
        parents: list[str | Version] | None = None,
        card: dict[str, str] | None = None,
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
        :param parents: the versions it was made from (a fine-tune's base, a distilled model's
            teacher, a retrain's predecessor): ``"churn:3"``, ``"churn@production"`` (the version the
            state names now) or :class:`Version` values. Each must exist in this store
            (:class:`UsageError` otherwise, before anything is written); ``lineage`` shows the tree.
        :param card: its model card's text by section: ``description``, ``intended_use``,
            ``limitations``, ``license`` (an identifier: ``apache-2.0``), ``task``, ``training``,
            ``evaluation``, ``authors``, ``citation``; ``card()`` writes a Hugging Face README.md with it.
        :param progress: called as ``progress(done_bytes, total_bytes)`` while files are stored.
        :param options: passed to the serializing plugin.
        With a ``signer``, the version's signature is stored right after its record, before the
        latest hint moves.

        :return: the committed :class:`Version`; ``bytes_written`` says how many artifact bytes were
            new to the store (0 when every file was already there).
        """
        check_name(domain, "domain name")
        given = {"tags": tags, "metrics": metrics, "params": params, "data": data, "input_example": input_example}
        given.update(parents=parents, card=card)
        recorded = recorded_fields(given)
        what = what_to_store(model, files, models, part_options)
        return self.uploader.upload(domain, what, extras, recorded, options, progress)

    def set_state(self, domain: str, version: int, state: str) -> None:
        """Point ``state`` (e.g. ``"production"``) at ``version``, atomically replacing where it pointed.
        With a ``signer``, the state is signed (a reader with a trust policy takes only signed states)."""
        self._before_writing()
        signer = self._signer()
        commit.set_state(self.storage, check_name(domain, "domain name"), check_version(version), check_name(state, "state name"), signer)

    def remove_state(self, domain: str, state: str) -> None:
        """Remove ``state``; with a ``signer``, a signed removal stays in its place."""
        self._before_writing()
        commit.remove_state(self.storage, check_name(domain, "domain name"), check_name(state, "state name"), self._signer())

    def delete(self, domain: str, version: int) -> None:
        """Remove a version: it leaves listings, ``latest`` falls back, states on it are cleared.
        Its number is never reused; ``gc()`` reclaims files no other version uses. With a
        ``signer``, the states removed and a signed ``latest`` that named it move by signed statements."""
        self._before_writing()
        commit.delete_version(self.storage, check_name(domain, "domain name"), check_version(version), self._signer())

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
        copier = Copier(
            self.storage, target.storage, states=states, progress=progress, before_writing=target._before_writing, cache=self.cache
        )
        return copier.run(selection)

    def mirror_to(
        self,
        other: ModelStore | str | os.PathLike,
        *,
        states: list[str] | None = None,
        delete: bool = False,
        prune: bool = False,
        allow_empty_source: bool = False,
        progress: ProgressCallback | None = None,
    ) -> CopyReport:
        """Bring ``other``, a read-only copy of this store, in step: new versions, states where they
        point now, and with ``delete`` the removal of versions, states and domains this store no
        longer has. With ``states`` (e.g. ``["production"]``) only the versions those states name;
        ``delete`` then removes the states this store removed, and ``prune`` the versions of
        ``other`` that no state of ``other`` names any more (those the states moved off: a serving
        copy holds what it serves). A version that a state of ``other``'s own names (one it does not
        mirror, set there) is kept and listed in ``report.kept``; domains this store does not have
        are left alone.

        This store must exist, and with ``delete`` hold at least one domain unless
        ``allow_empty_source`` (emptying ``other``): otherwise :class:`UsageError`, nothing deleted.

        A run with nothing new costs listings and a read of each domain's states on each side, and
        transfers nothing: a version the destination lists with a record of the source's size is
        taken as already there (use :meth:`copy_to` to compare records byte for byte).
        """
        from .replicate import Copier

        target = other if isinstance(other, ModelStore) else ModelStore(other)
        state_filter = [check_name(name, "state name") for name in states] if states else None
        copier = Copier(
            self.storage,
            target.storage,
            states=True,
            delete=delete,
            prune=prune,
            allow_empty_source=allow_empty_source,
            trust_listing=True,
            progress=progress,
            before_writing=target._before_writing,
            cache=self.cache,
        )
        return copier.run(None, state_filter=state_filter)

    def push(
        self,
        domain: str,
        ref: str,
        version: int | None = None,
        *,
        state: str | None = None,
        progress: ProgressCallback | None = None,
        **options: Any,
    ) -> str:
        """Send a version (latest by default) to ``ref``, outside any store: an OCI registry's
        ``oci://registry/repository[:tag]`` with modelstore-oci (the tag defaults to the version number).

        Its files are verified before they leave, and only what the other side lacks is sent; its
        record and signatures go with it, so :meth:`pull` restores the same version. With a trust
        policy, a version not signed as it requires is refused, as a download is.

        :param options: for the transport (modelstore-oci: ``plain_http=True`` for a registry on loopback).
        :return: what names the pushed artifact there now (an OCI manifest's digest, ``sha256:…``).
        """
        from .transport import push

        with open_transport(self.plugins, ref, options) as transport:
            return push(self.loader, transport, domain, version, state, progress)

    def pull(self, ref: str, domain: str | None = None, *, progress: ProgressCallback | None = None, **options: Any) -> Version:
        """Commit what ``ref`` holds as a version of this store: a version another store pushed
        (same files, record, metrics, params, tags and signatures; ``metadata["pulled_from"]`` says
        where it came from), or the files of an artifact another tool made (a raw-files version).

        Every byte is verified before anything is committed. A pushed version keeps its domain and
        number when the number is free here (so its signatures still hold); pulled again, it is
        returned as it is. When the number is taken, or ``domain`` names another domain, it becomes
        the domain's next version and its signatures, which sign the domain and number, are left
        out (refused under a trust policy, which could never load it). With a trust policy, a
        version not signed as it requires is refused.

        :param domain: the domain to pull into (by default the pushed version's; for another tool's
            artifact, the repository's last name).
        :param options: for the transport (modelstore-oci: ``plain_http=True``).
        """
        from .transport import pull

        with open_transport(self.plugins, ref, options) as transport:
            return pull(self.uploader, transport, domain, self.trust_policy, progress, self._before_writing)

    def sign(self, domain: str, version: int | None = None, *, state: str | None = None, key: Any = None) -> SignatureInfo:
        """Sign an existing version (latest by default) with ``key`` (a private key's path, PEM text,
        the key object, or the name of a key made by ``modelstore keys create``), else the store's
        ``signer``. Another signer's signatures stay: a version may carry several. Its summary entry
        is signed too, and the signed ``latest`` moves to it when it is newer than the one named.

        Signs the record as it is now: check it first (``verify``) if the store may have been tampered with.
        """
        from .signing import sign_version

        signer = self._signer(key)
        if signer is None:
            raise UsageError(
                "no signing key: pass key=, open the store with signer=, or set $MODELSTORE_SIGNING_KEY"
                " (`modelstore keys create NAME` makes a key)",
                cli="no signing key: pass --key PATH (or the NAME of a key `modelstore keys create NAME` made),"
                " or set $MODELSTORE_SIGNING_KEY",
            )
        record = self.info(domain, version, state=state).record
        self._before_writing()
        return sign_version(self.storage, record, signer, self.trust_policy)

    def signatures(self, domain: str, version: int | None = None, *, state: str | None = None) -> list[SignatureInfo]:
        """Who signed a version (latest by default): each signature document, checked against the key it
        names (``valid``) and against the trust policy (``trusted``). Needs the ``signing`` extra
        when the version has signatures."""
        from .signing import describe_signatures

        record = self.info(domain, version, state=state).record
        return describe_signatures(self.storage, record, self.trust_policy)

    def retain(
        self,
        domain: str | None = None,
        keep_last: int | None = None,
        older_than: timedelta | float | None = None,
        *,
        keep_states: bool = True,
        keep_signed: bool = False,
        dry_run: bool = True,
        save: bool = False,
    ) -> RetentionReport:
        """Delete the versions outside a retention policy (by default only say which: ``dry_run``).

        Each domain (``domain``, else every one) keeps its ``keep_last`` newest versions; with
        ``older_than`` (a timedelta, or seconds) also every version younger than that, judged by the
        store's own timestamps (when the record was committed to this store, never the uploader's
        clock); with ``keep_states``, every version a state names; with ``keep_signed``, every version
        signed by a trusted key (any key without a trust policy); and the parents of every version
        kept. Without ``keep_last``, each domain's stored policy is applied (domains without one are
        left alone). ``save`` stores the policy for ``domain``, so that ``gc()`` applies it.

        :return: a :class:`~modelstore_core.retention.RetentionReport`: per domain what is kept, what
            went (or would go) and what protects the versions kept past the policy; ``bytes``: what
            ``gc`` reclaims once they are gone.
        """
        from .retention import RetentionPolicy, retain, stored_policies, write_policy

        if domain is not None:
            check_name(domain, "domain name")
        problems: list[str] = []
        if keep_last is None:
            if older_than is not None or save:
                raise UsageError("retain() needs keep_last with older_than= or save= (without it, the stored policies apply)")
            policies = stored_policies(self.storage, [domain] if domain is not None else self.list_domains(), problems)
        else:
            policy = RetentionPolicy.of(keep_last, older_than, keep_states, keep_signed)
            if save:
                if domain is None:
                    raise UsageError("retain(save=True) stores the policy of one domain: name it")
                self._before_writing()
                write_policy(self.storage, domain, policy)
            policies = {name: policy for name in ([domain] if domain is not None else self.list_domains())}
        if not dry_run:
            self._before_writing()
        return retain(self, policies, dry_run=dry_run, problems=problems)

    def retention_policy(self, domain: str) -> RetentionPolicy | None:
        """``domain``'s stored retention policy (``retain(domain, keep_last=..., save=True)``), or ``None``."""
        from .retention import read_policy

        return read_policy(self.storage, check_name(domain, "domain name"))

    def forget_retention_policy(self, domain: str) -> None:
        """Remove ``domain``'s stored retention policy (``gc`` then deletes none of its versions)."""
        from .retention import write_policy

        self._before_writing()
        write_policy(self.storage, check_name(domain, "domain name"), None)

    def lineage(self, domain: str, version: int | None = None, *, depth: int = 8, problems: list[str] | None = None) -> LineageNode:
        """Where a version (latest by default) came from and what came of it: its parents (the
        ``parents`` each records, up ``depth`` generations) and its children (the versions that name
        it, found in every domain's summary, down as far), each with its data fingerprints and git
        commit (:mod:`modelstore_core.lineage`)."""
        from .lineage import lineage

        v = self.resolve(domain, version)
        if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 64:
            raise UsageError(f"depth must be a number of generations from 1 to 64, not {depth!r}")
        return lineage(self, v.domain, v.version, depth, problems)

    def card(self, domain: str, version: int | None = None, *, state: str | None = None, signatures: bool = False) -> str:
        """A version's model card (latest by default): a Hugging Face compatible ``README.md``, YAML
        front matter (license, tags, library, base model from the parents, datasets from the data
        fingerprints, metrics as ``model-index``) and a body (the card's text, lineage, data, metrics,
        params, input signature, environment, files; with ``signatures``, who signed it). Every value
        from the record is escaped (:mod:`modelstore_core.card`)."""
        from .card import model_card

        v = self.info(domain, version, state=state)
        states = [name for name, n in self.states(v.domain).items() if n == v.version]
        return model_card(v.record, states, self.signatures(v.domain, v.version) if signatures else ())

    def gc(self, *, grace: float = 3600.0, dry_run: bool = False, retention: bool = True) -> GCReport:
        """Remove what interrupted uploads and deleted versions left behind.

        Never touches a committed version or an upload in progress, on any machine: an upload keeps
        a marker in the store fresh (every 60 seconds, ``$MODELSTORE_HEARTBEAT``), and one whose
        marker the store shows unchanged for ``grace`` seconds (at least 5 heartbeats) has stopped.
        Ages are the store's own timestamps, never a machine's clock
        (:mod:`modelstore_core.protocol.gc`).

        With ``retention``, every domain's stored retention policy is applied first
        (:meth:`retain`; with ``dry_run``, only reported): ``report.retention``.

        :raises UsageError: ``grace`` is shorter than 5 heartbeats.
        """
        from .protocol.gc import collect_garbage
        from .protocol.liveness import check_grace

        check_grace(grace)  # before anything is deleted
        kept = self.retain(dry_run=dry_run) if retention else None
        report = collect_garbage(self.storage, grace=grace, dry_run=dry_run)
        report.retention = kept
        return report

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
            invalid one is a ``bad-signature`` problem; one made before signatures covered
            dependencies is ``partial-signature``) and, with a trust policy, each version against it
            (``untrusted``); ``report.signers`` says who validly signed each version. The signed
            statements of ``latest`` and the states are checked too (:mod:`~modelstore_core.pointers`):
            ``untrusted-pointer``, ``rolled-back`` (older than one this machine saw) and
            ``missing-version`` (a signed pointer names a version that is gone).
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
            seen=self.cache.seen_pointers(self.storage.url) if signatures else None,
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
        return [self.loader.version(domain, n) for n, _ in found]

    def latest(self, domain: str) -> Version:
        return self.loader.latest(domain)

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
        first access as usual. Under a trust policy, only signed data counts: entries signed by a
        trusted key (else the version's record and its signatures, read), and states a trusted key
        vouches for; a version no trusted key signed is left out (and said so in ``problems``).
        """
        from .search import Query, Trust, search

        query = Query.parse(where, sort, limit)
        found: list[str] = []
        hits = search(self.storage, domain, query, problems=found, trust=Trust.of(self))
        if problems is not None:
            problems.extend(found)
        else:
            for problem in found:
                warnings.warn(problem, RuntimeWarning, stacklevel=2)
        versions = []
        for hit in hits:
            v = self.loader.version(hit.domain, hit.version)
            v.summary = hit.entry
            versions.append(v)
        return versions

    def changes(self, domain: str | None = None, since: int | None = None, *, problems: list[str] | None = None) -> Iterator[Event]:
        """The events of the change feed after number ``since`` (from the first when ``None``), in
        order, of every domain or of ``domain``: :class:`~modelstore_core.protocol.records.Event`
        values (``.seq``, ``.event``: ``uploaded``, ``copied``, ``deleted``, ``state_set``,
        ``state_removed`` or ``signed``; ``.domain``, ``.version``, ``.state``, ``.time``).

        Every committed upload, copy and state move is there exactly once, in the order they took
        effect (:mod:`modelstore_core.protocol.feed`). Polling costs one listing from ``since`` and a
        read per new event, whatever the number of versions. Before reading, an upload or state
        move committed by a writer that died before its event is put in the feed (best effort: a
        reader without write access leaves that to the next writer).

        :param problems: a list to append what was passed (an event that cannot be read, a repair
            that failed); without it each is a :class:`RuntimeWarning`.
        """
        from .protocol import feed

        if domain is not None:
            check_name(domain, "domain name")
        if since is not None and (isinstance(since, bool) or not isinstance(since, int) or since < 0):
            raise UsageError(f"since must be an event number (0 or more), not {since!r}")
        found: list[str] = []
        feed.repair(self.storage, domain, self._markers, found)
        for event in feed.read_events(self.storage, since or 0, found):
            if domain is None or event.domain == domain:
                yield event
        if problems is not None:
            problems.extend(found)
        else:
            for problem in found:
                warnings.warn(problem, RuntimeWarning, stacklevel=2)

    def feed_end(self) -> int:
        """The number of the last event in the change feed (0 when there is none): ``changes(since=store.feed_end())``
        yields only what happens from now on."""
        from .protocol import feed

        return feed.tail(self.storage)

    def states(self, domain: str) -> dict[str, int]:
        """``{"production": 3, ...}``; under a trust policy, only the states a trusted key vouches for."""
        return self.loader.states(domain)

    def info(self, domain: str, version: int | None = None, *, state: str | None = None) -> Version:
        """The version (latest by default) with its metadata loaded.

        Online, which version ``latest`` or ``state`` named is remembered on this machine for
        offline loads; offline, it is answered from that memory and the cache alone.
        """
        return self.loader.info(domain, version, state)

    def resolve(self, domain: str, version: int | None = None, state: str | None = None) -> Version:
        """Which version ``version``/``state``/latest names (metadata not yet fetched)."""
        return self.loader.resolve(domain, version, state)

    def check_input(
        self, domain: str, data: Any, version: int | None = None, *, state: str | None = None, strict: bool = False
    ) -> InputCheck:
        """Whether ``data`` (a pandas DataFrame, numpy array, torch tensor or dict of them) matches the
        input signature recorded with a version (latest by default): missing or extra columns,
        column order, dtypes and shapes. Only ``data``'s names, dtypes and shape are read. A column
        of another dtype family that fits (an int column for a float one) is a note, not a problem.

        :param strict: raise :class:`InputMismatchError` listing the problems instead of returning them.
        :return: an :class:`~modelstore_core.input_signature.InputCheck` (``.ok``, ``.problems``, ``.notes``).
        :raises UsageError: the version records no input signature.
        """
        v = self.info(domain, version, state=state)
        if v.signature is None:
            raise UsageError(
                f"version {v.version} of {v.domain!r} records no input signature: its flavor plugin does not know one;"
                " upload with input_example=X to record one"
            )
        from .input_signature import InputCheck, check_input

        found = check_input(v.signature, data)
        check = InputCheck(v.domain, v.version, v.signature, [p for p in found if not p.note], [p for p in found if p.note])
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
        wanted = [self.loader.version(domain, check_version(int(v) if isinstance(v, Version) else v)) for v in versions]
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
        return self.info(domain, version, state=state).environment

    def check_environment(self, domain: str, version: int | None = None, *, state: str | None = None) -> EnvironmentCheck:
        """What differs between this environment and the one a version was stored in: Python and
        every recorded distribution, each marked whether it ``matters`` (Python's major.minor, or
        the major.minor of the flavor's framework and serializer: what ``load`` warns about)."""
        from .environment import check_environment

        return check_environment(self.info(domain, version, state=state).record)

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
        return self.loader.load(
            domain,
            version,
            state=state,
            trust=trust,
            strict_environment=strict_environment,
            part=part,
            part_options=part_options,
            progress=progress,
            options=options,
        )

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
        return self.loader.download(domain, version, state=state, to=to, overwrite=overwrite, progress=progress)

    def file_path(self, domain: str, version: int | Version | None = None, *, path: str, state: str | None = None) -> Path:
        """The verified local path (in the per-user cache) of the version's file ``path`` (its stored
        name, e.g. ``"model.onnx"`` or ``"extras/vocab.txt"``), to read one file without loading the
        model or copying the version (a :class:`Version` from ``info`` is not read again). Checked
        like a load: the trust policy, then the file's bytes (hashed unless proven since they last
        were). Do not modify the file."""
        return self.loader.file_path(domain, version, state=state, path=path)

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


__all__ = ["ModelStore"]
