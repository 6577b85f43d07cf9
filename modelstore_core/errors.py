"""One exception hierarchy, rooted in :class:`ModelStoreError`.

Every message says what went wrong and, where there is one, what to do next.
"""

from __future__ import annotations


class ModelStoreError(Exception):
    """Base class of every error raised by modelstore.

    ``cli_message`` is the same message as the command line says it, where the advice differs: its
    flags and environment variables instead of keyword arguments (``--force`` for
    ``overwrite=True``); ``None`` when the message reads the same from both.
    """

    cli_message: str | None = None

    def __init__(self, *args: object, cli: str | None = None, **kwargs: object):
        super().__init__(*args, **kwargs)
        if cli is not None:
            self.cli_message = cli


def install_hint(distribution: str, extra: str | None = None) -> str:
    """How to install a plugin (with one of its extras): from an index, and from a source checkout of modelstore."""
    if extra:
        spec = f"{distribution}[{extra}]"
        return f'run `pip install "{spec}"` (from a modelstore checkout: `pip install -e "plugins/{spec}"`)'
    return f"run `pip install {distribution}` (from a modelstore checkout: `pip install -e plugins/{distribution}`)"


# --- not found -------------------------------------------------------------


class NotFoundError(ModelStoreError, LookupError):
    """Something that was asked for does not exist in the store."""


class DomainNotFoundError(NotFoundError):
    def __init__(self, domain: str):
        self.domain = domain
        super().__init__(f"domain {domain!r} does not exist in this store")


class VersionNotFoundError(NotFoundError):
    def __init__(self, domain: str, version: int | None = None):
        self.domain, self.version = domain, version
        if version is None:
            msg = f"domain {domain!r} has no versions"
        else:
            msg = f"version {version} of domain {domain!r} does not exist"
        super().__init__(msg)


class DanglingStateError(VersionNotFoundError):
    """A state points at a version that no longer exists (a delete was interrupted, or the store was edited)."""

    def __init__(self, domain: str, state: str, version: int):
        self.state = state
        super().__init__(domain, version)
        self.args = (
            f"state {state!r} of domain {domain!r} points at version {version}, which was deleted;"
            f" move it with `modelstore state set {domain} VERSION {state}` or remove it with `modelstore verify --repair`",
        )


class StateNotFoundError(NotFoundError):
    def __init__(self, domain: str, state: str):
        self.domain, self.state = domain, state
        super().__init__(f"domain {domain!r} has no state {state!r}")


# --- bad input -------------------------------------------------------------


class UsageError(ModelStoreError, ValueError):
    """An API call whose arguments cannot go together or are of the wrong kind."""


class InputMismatchError(ModelStoreError, ValueError):
    """An input does not match the signature recorded with a version (``check_input(..., strict=True)``).

    ``problems`` are the :class:`~modelstore_core.input_signature.InputProblem` values found.
    """

    def __init__(self, domain: str, version: int, problems: list):
        self.domain, self.version, self.problems = domain, version, problems
        shown = "; ".join(str(p) for p in problems[:10]) + (f" and {len(problems) - 10} more" if len(problems) > 10 else "")
        super().__init__(
            f"the input does not match what version {version} of {domain!r} expects: {shown}"
            f" (`modelstore info {domain} {version}` shows its input signature)"
        )


class EnvironmentMismatchError(ModelStoreError):
    """``load(..., strict_environment=True)``: this environment differs from the version's where it matters."""

    def __init__(self, domain: str, version: int, differences: list):
        self.domain, self.version, self.differences = domain, version, differences
        shown = "; ".join(str(d) for d in differences)
        super().__init__(
            f"version {version} of {domain!r} was stored with another environment: {shown}; nothing was loaded."
            f" `modelstore env {domain} {version} > requirements.txt` writes its requirements"
            " (`pip install -r requirements.txt`), or load without strict_environment=True"
        )


class InvalidNameError(ModelStoreError, ValueError):
    """A domain, state, tag or file name that cannot be used as given."""


class UnsupportedModelError(ModelStoreError, TypeError):
    """No installed plugin knows how to serialize this model."""

    def __init__(self, model_type: str, flavors: list[str], hint: str | None):
        self.model_type, self.flavors, self.hint = model_type, flavors, hint
        msg = f"no installed modelstore plugin can store a {model_type}"
        msg += f" (installed flavors: {', '.join(sorted(flavors)) or 'none'})"
        if hint:
            msg += f"; {install_hint(hint)}"
        else:
            msg += "; store its files with upload(domain, files=[...]) instead"
        super().__init__(msg)


class UnknownSchemeError(ModelStoreError, ValueError):
    """No storage backend handles the URL's scheme."""

    def __init__(self, url: str, scheme: str, schemes: list[str], hint: str | None):
        self.url, self.scheme, self.schemes = url, scheme, schemes
        msg = f"no storage backend for {scheme}:// URLs"
        msg += f" (available schemes: {', '.join(sorted(schemes)) or 'none'})"
        if hint:
            msg += f"; {install_hint(hint)}"
        super().__init__(msg)


class UnknownTransportError(ModelStoreError, ValueError):
    """No installed plugin pushes to or pulls from references of this scheme."""

    def __init__(self, ref: str, scheme: str, hint: str | None):
        self.ref, self.scheme = ref, scheme
        msg = f"no installed plugin pushes to or pulls from {scheme}:// references"
        if hint:
            msg += f"; {install_hint(hint)}"
        super().__init__(msg)


# --- plugins -----------------------------------------------------------------


class MissingPluginError(ModelStoreError):
    """A stored version needs a plugin that is not installed."""

    def __init__(self, flavor: str, plugin: str | None):
        self.flavor, self.plugin = flavor, plugin
        msg = f"loading a {flavor!r} model needs a plugin that is not installed"
        if plugin:
            msg += f"; {install_hint(plugin)}"
        super().__init__(msg)


class MissingFrameworkError(ModelStoreError, ImportError):
    """A flavor's plugin is installed, but the framework it stores and loads with (one of its
    ``modules``) is not: the plugin imports it only when it handles a model."""

    def __init__(self, flavor: str, module: str, distribution: str | None, extra: str | None, *, storing: bool = False):
        self.flavor, self.module, self.distribution, self.extra = flavor, module, distribution, extra
        how = install_hint(distribution, extra) if distribution else f"install the distribution that provides the {module!r} module"
        doing = "storing" if storing else "loading"
        super().__init__(f"{doing} a {flavor!r} model needs the {module!r} module, which is not installed; {how}", name=module)


class PluginLoadError(ModelStoreError, ImportError):
    """An installed plugin failed to import; chained to the original error."""

    def __init__(self, name: str, error: BaseException):
        self.plugin, self.error = name, error
        super().__init__(f"modelstore plugin {name!r} failed to load: {type(error).__name__}: {error}")


class UntrustedArtifactError(ModelStoreError):
    """Loading this artifact could execute code; the caller must pass ``trust=True``."""


# --- storage and integrity ---------------------------------------------------


class IntegrityError(ModelStoreError):
    """A stored file's bytes do not match the sha256 recorded for it."""

    def __init__(self, name: str, expected: str, actual: str, problem: str | None = None):
        self.file, self.expected, self.actual = name, expected, actual
        problem = problem or f"sha256 {actual[:12]}… does not match the recorded {expected[:12]}…"
        super().__init__(f"file {name!r} is corrupted: {problem}")


class CorruptRecordError(ModelStoreError):
    """A document read from the store (version record, states, marker) breaks the store's rules.

    Written by something other than modelstore, edited by hand, or damaged; the key and the field
    say where to look.
    """

    def __init__(self, key: str, field: str | None, problem: str):
        self.key, self.field, self.problem = key, field, problem
        where = f"{key}: {field}" if field else key
        super().__init__(
            f"{where} {problem}; this entry was not written by modelstore or was damaged:"
            " `modelstore verify` lists such entries, deleting the version (or restoring the object) fixes it"
        )


class DocumentTooLargeError(CorruptRecordError):
    """A document of the store is larger than the limit for its kind
    (:mod:`modelstore_core.protocol.limits`): refused after reading one byte past the limit.

    ``token`` is the whole object's compare-and-swap token, for a writer that replaces it (a summary
    segment rebuilt from the records).
    """

    def __init__(self, key: str, what: str, size: int | None, limit: int, token: object = None):
        self.size, self.limit, self.token = size, limit, token
        size_text = f"{size} bytes" if size is not None else f"over {limit} bytes"
        super().__init__(key, None, f"is {size_text}, over the {limit} byte limit for {what} (reading stopped there)")


class CorruptArtifactError(ModelStoreError):
    """A stored model file (its sha256 intact) breaks its format's rules in a way that would let the
    framework's compiled code read or write out of bounds, or blow up memory: refused before use.

    The message names the file and the check that failed.
    """

    def __init__(self, file: str, problem: str):
        self.file, self.problem = file, problem
        super().__init__(
            f"{file} is not a valid model file: {problem}; it was refused before the framework read it."
            " It was written by something other than this plugin or was tampered with: upload the model again"
        )


class SigningUnavailableError(ModelStoreError, ImportError):
    """Signing or checking signatures needs the ``signing`` extra, which is not installed."""

    def __init__(self, error: BaseException):
        self.error = error
        super().__init__(
            f"signing and checking signatures need the `signing` extra ({error}); run `pip install 'modelstore-core[signing]'`"
        )


class UntrustedSignatureError(ModelStoreError):
    """A trust policy is set and the version is not signed, validly and over its current record and
    files, by the trusted keys it requires; nothing was loaded or written.

    ``found`` maps the key id of each signature document of the version to what was wrong with
    it ("" for a valid signature by a key that is not trusted).
    """

    def __init__(self, domain: str, version: int, require: str, trusted: list[str], found: dict[str, str]):
        self.domain, self.version, self.require, self.trusted, self.found = domain, version, require, trusted, found
        need = "every trusted key" if require == "all" else "a trusted key"
        if found:
            signers = ", ".join(f"{k} ({why or 'not trusted'})" for k, why in sorted(found.items()))
            seen = f"its signatures: {signers}"
        else:
            seen = "it has no signature"
        problem = (
            f"version {version} of {domain!r} is not signed by {need} (trusted: {', '.join(trusted)}); {seen}; nothing was loaded."
            f" If the version is genuine, sign it with a trusted key (`modelstore sign {domain} {version} --key KEY`),"
            " or trust its signer's public key"
        )
        super().__init__(
            f"{problem} (ModelStore(trusted_keys=[...]) or $MODELSTORE_TRUSTED_KEYS)",
            cli=f"{problem} ($MODELSTORE_TRUSTED_KEYS)",
        )


class UntrustedPointerError(UntrustedSignatureError):
    """A trust policy is set and ``latest`` or a state of a domain is not vouched for: no statement
    signed by a trusted key names the version it points at, or the one that does names a version
    the store no longer holds, or another record; nothing was loaded.

    ``pointer`` is ``"latest"`` or ``"state 'NAME'"``; ``version`` the version it named (``None``
    when no signed statement says).
    """

    def __init__(self, domain: str, pointer: str, version: int | None, trusted: list[str], problem: str, advice: str):
        self.domain, self.pointer, self.version, self.trusted, self.problem = domain, pointer, version, trusted, problem
        self.require, self.found = "any", {}
        ModelStoreError.__init__(self, f"{pointer} of {domain!r} {problem}; nothing was loaded. {advice}")


class RollbackError(UntrustedPointerError):
    """A trust policy is set and the signed statement of ``latest`` or a state is older than one this
    machine has already seen (a lower serial number, or another version under the same one): someone
    with write access to the store put back a statement that was superseded; nothing was loaded.

    ``serial`` is the statement's, ``seen`` the ``(serial, version, when)`` this machine remembers.
    """

    def __init__(self, domain: str, pointer: str, version: int | None, serial: int, seen: tuple[int, int | None, str], trusted: list[str]):
        self.serial, self.seen = serial, seen
        named = "no version" if version is None else f"version {version}"
        seen_named = "no version" if seen[1] is None else f"version {seen[1]}"
        super().__init__(
            domain,
            pointer,
            version,
            trusted,
            f"goes back: its signed statement is number {serial}, naming {named}, but this machine saw number {seen[0]},"
            f" naming {seen_named}, on {seen[2]}; someone with write access to the store may have put back a superseded"
            " statement (a rollback)",
            "Check the store (`modelstore verify --signatures`) and load a version by number meanwhile; if the store was"
            " deliberately reset (the domain deleted and made again, or restored from a backup), forget what this machine"
            " saw with `modelstore cache clear`",
        )


class StorageError(ModelStoreError):
    """A storage backend failed in a way that retrying did not fix."""


class KeyNotFoundError(StorageError, KeyError):
    """A storage primitive was asked for a key that does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class MissingObjectError(KeyNotFoundError):
    """A version's record names a file whose object the store no longer holds: deleted by hand or by
    another tool, or never fully copied there. The record is intact; the bytes are gone."""

    def __init__(self, domain: str, version: int, path: str, sha256: str, key: str):
        self.domain, self.version, self.path, self.sha256, self.key = domain, version, path, sha256, key
        super().__init__(
            f"file {path!r} of version {version} of {domain!r} is missing from the store (its object {key} is gone:"
            " deleted outside modelstore, or never fully copied there). Uploading a file with the same bytes again,"
            " to any domain, restores it for every version that names it, as does putting the object back from a backup;"
            " `modelstore verify` lists the versions affected"
        )


class TargetExistsError(ModelStoreError, FileExistsError):
    """A download would overwrite files that are already in the target directory."""

    def __init__(self, target: str, existing: list[str]):
        self.target, self.existing = target, existing
        shown = ", ".join(existing[:5]) + (f" and {len(existing) - 5} more" if len(existing) > 5 else "")
        held = f"{target} already holds {shown}; choose an empty directory or"
        super().__init__(f"{held} pass overwrite=True to replace them", cli=f"{held} pass --force to replace them")


class UnsafeServerError(StorageError):
    """The storage server does not honour the conditional writes that keep concurrent writers safe."""

    def __init__(self, url: str, missing: tuple[str, ...], detail: str | None = None):
        self.url, self.missing = url, missing
        what = " and ".join(missing)
        problem = (
            f"the server behind {url} does not honour conditional writes ({what}: "
            + (detail or "a request that must fail succeeded")
            + "), so concurrent uploads could overwrite each other's versions and states; nothing was written."
            " Use a server that implements them (AWS S3, GCS, MinIO and Ceph do; S3-compatible servers need"
            " If-None-Match/If-Match on PutObject), or, if only one process ever writes to this store,"
        )
        super().__init__(
            f"{problem} open it with ModelStore(url, single_writer=True)",
            cli=f"{problem} write to it from Python with ModelStore(url, single_writer=True) (the command line has no such option)",
        )


class UnsafeCacheError(ModelStoreError):
    """A directory of the per-user cache that a load would trust is not its user's alone: another user
    could plant files with forged proofs in it. Nothing was read from it."""

    def __init__(self, path: str, problem: str):
        self.path, self.problem = path, problem
        message = (
            f"the cache directory {path} {problem}, so another user could plant files that a load would trust;"
            " nothing was read from the cache. `modelstore cache clear` empties the cache and makes it yours alone"
            " (if you own it); otherwise set $MODELSTORE_CACHE_DIR (ModelStore(cache_dir=...)) to a directory of your own"
        )
        super().__init__(message, cli=message.replace(" (ModelStore(cache_dir=...))", ""))


class ConflictError(ModelStoreError):
    """A concurrent writer kept winning a compare-and-swap; the operation was not applied."""


class SourceChangedError(ModelStoreError):
    """A file changed while it was being uploaded; nothing was committed."""


# --- offline ---------------------------------------------------------------


class OfflineError(ModelStoreError):
    """The store is opened offline (``MODELSTORE_OFFLINE=1``, ``offline=True``) and this operation needs it."""


class NotCachedError(OfflineError, LookupError):
    """Offline, a name (latest, a state) or a version this machine has not loaded before."""


# --- importing ---------------------------------------------------------------


class LegacyStoreError(ModelStoreError):
    """A legacy model that cannot be imported as it is (reported per model by the import)."""
