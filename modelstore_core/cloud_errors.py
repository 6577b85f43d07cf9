"""One shape for the errors of object-store backends (S3, GCS, Azure...): what their SDK raised,
as a :class:`StorageError` that says what failed and what to do, with no secret in it.

A backend describes its SDK once, in a :class:`CloudErrors`: which exceptions are the SDK's, and
predicates that sort one into the failures every object store has (the bucket does not exist, the
credentials were refused or are absent, the server did not answer in time, could not be reached,
or answered with an error). Each store binds it to its own bucket, endpoint, timeout and secrets,
and runs its requests inside ``with self._errors(action, key):``.

A missing key and a failed precondition are not sorted here: what they mean depends on the call
(:class:`KeyNotFoundError` from a read, ``False`` from a compare-and-swap, nothing from a delete),
so each primitive catches them itself inside that block. Throttling and transient failures are
retried by the SDK: what reaches here has used up its retries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .bucket import BucketURL
from .errors import StorageError


class DeadlineExceeded(Exception):
    """A request (with its retries) ran out of the store's ``timeout``; reported as not answering in time."""


def _never(exc: BaseException) -> None:
    return None


def _itself(exc: BaseException) -> BaseException:
    return exc


@dataclass(frozen=True)
class CloudErrors:
    """How one SDK's exceptions read as :class:`StorageError`. The predicates are asked in the order
    of the fields; the first that recognises the exception gives the message."""

    #: the service, as messages name it: ``"S3"``
    service: str
    #: what it calls a bucket: ``"bucket"``, ``"container"``
    container: str
    #: what to check besides the credentials when they are refused: ``"(AWS_PROFILE...) and the bucket policy"``
    refused_hint: str
    #: where the endpoint is set, for an endpoint that does not answer: ``"AWS_ENDPOINT_URL, endpoint_url="``
    endpoint_hint: str
    #: whether an exception is the SDK's own (converted); any other passes through unchanged
    from_sdk: Callable[[BaseException], bool]
    #: the bucket itself does not exist
    missing_container: Callable[[BaseException], bool]
    #: the code or status of a refusal of the credentials or of their permissions, else ``None``
    refused: Callable[[BaseException], str | None]
    #: no answer in time, by the SDK's own timeouts (:class:`DeadlineExceeded` is always one)
    timed_out: Callable[[BaseException], bool]
    #: the endpoint could not be reached
    unreachable: Callable[[BaseException], bool]
    #: the server's status, code and message for any other error it answered with, else ``None``
    answer: Callable[[BaseException], str | None]
    #: what to do when no credentials were found (``None``: not that failure)
    no_credentials: Callable[[BaseException], str | None] = _never
    #: the error a retry wrapper of the SDK holds, which the message describes
    cause: Callable[[BaseException], BaseException] = _itself
    #: ``False`` where an SDK message can hold a secret (a SAS token in a request URL): the
    #: :class:`StorageError` is then raised without the SDK's exception chained to it
    chain: bool = True

    def bind(self, *, location: BucketURL, endpoint: str, timeout: float, scrub: Callable[[str], str]) -> StoreErrors:
        """These rules for one store: its bucket, endpoint (credential-free), ``timeout`` (seconds a
        request may take, retries included) and ``scrub`` (masks its secrets in a text)."""
        return StoreErrors(self, location, endpoint, timeout, scrub)


@dataclass(frozen=True)
class StoreErrors:
    """:class:`CloudErrors` bound to one store: ``with errors("read", key): ...`` turns what the SDK
    raises into a :class:`StorageError`; a :class:`StorageError` raised inside passes through."""

    sdk: CloudErrors
    location: BucketURL
    endpoint: str
    timeout: float
    scrub: Callable[[str], str]

    @contextmanager
    def __call__(self, action: str, key: str | None = None) -> Iterator[None]:
        """Convert SDK errors of a request that does ``action`` (a verb: ``"read"``) to ``key`` (``None``: the store)."""
        try:
            yield
        except StorageError:
            raise
        except Exception as exc:
            if not (isinstance(exc, DeadlineExceeded) or self.sdk.from_sdk(exc)):
                raise
            error = StorageError(self.scrub(self.message(self.sdk.cause(exc), action, key)))
            cause = exc if self.sdk.chain else None
        else:
            return
        raise error from cause  # outside the except block: without chaining, nothing of the SDK's is its context

    def message(self, exc: BaseException, action: str, key: str | None) -> str:
        """What failed when doing ``action`` to ``key``, and what to do (not scrubbed yet)."""
        sdk, where = self.sdk, self.location.where(key)
        if sdk.missing_container(exc):
            return f"{sdk.service} {sdk.container} {self.location.bucket!r} does not exist (endpoint {self.endpoint})"
        if (code := sdk.refused(exc)) is not None:
            return f"{sdk.service} refused to {action} {where} ({code}); check the credentials {sdk.refused_hint}"
        if (setup := sdk.no_credentials(exc)) is not None:
            return f"no {sdk.service} credentials found to {action} {where}; {setup}"
        if isinstance(exc, DeadlineExceeded) or sdk.timed_out(exc):
            detail = str(exc) if isinstance(exc, DeadlineExceeded) else type(exc).__name__
            return (
                f"{sdk.service} at {self.endpoint} did not answer in time to {action} {where} (timeout {self.timeout:g} s,"
                f" retries included; {detail}); check that the endpoint is up and reachable ({sdk.endpoint_hint}),"
                " or allow more time with --timeout SECONDS / ModelStore(url, timeout=SECONDS)"
            )
        if sdk.unreachable(exc):
            return f"could not reach {sdk.service} at {self.endpoint} to {action} {where} (after retries): {type(exc).__name__}"
        if (answer := sdk.answer(exc)) is not None:
            return f"{sdk.service} could not {action} {where}: {answer}".rstrip()
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        return f"{sdk.service} could not {action} {where}: {type(exc).__name__}: {first_line}"


__all__ = ["CloudErrors", "DeadlineExceeded", "StoreErrors"]
