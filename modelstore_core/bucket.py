"""Helpers for object-store backends whose URLs read ``scheme://bucket/prefix`` (S3, GCS, ...)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

from .errors import InvalidNameError


@dataclass(frozen=True)
class BucketURL:
    """A checked ``scheme://bucket/prefix``: no credentials, no query, no ``.``/``..`` parts.

    ``prefix`` is ``""`` or ends with ``/``; every key the core uses lives below it.
    """

    scheme: str
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str, schemes: tuple[str, ...], *, service: str, credentials_hint: str) -> BucketURL:
        """Parse ``url``; ``service`` names the store in messages, ``credentials_hint`` says where credentials come from."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in schemes:
            raise InvalidNameError(f"a {service} store URL starts with {schemes[0]}://")
        if "@" in parts.netloc:
            raise InvalidNameError(f"{scheme}:// URLs take no credentials; use {credentials_hint}")
        if parts.query or parts.fragment:
            raise InvalidNameError(f"{scheme}:// URLs take no query or fragment; pass options as ModelStore(url, option=value)")
        if not parts.netloc:
            raise InvalidNameError(f"a {service} store URL names a bucket: {schemes[0]}://bucket or {schemes[0]}://bucket/prefix")
        prefix = "/".join(p for p in parts.path.split("/") if p)
        if any(p in (".", "..") for p in prefix.split("/")):
            raise InvalidNameError(f"a {service} store prefix cannot contain '.' or '..' parts")
        return cls(schemes[0], parts.netloc, prefix + "/" if prefix else "")

    @property
    def url(self) -> str:
        """The store's URL, normalised (``s3://bucket/prefix``)."""
        return f"{self.scheme}://{self.bucket}/{self.prefix.rstrip('/')}" if self.prefix else f"{self.scheme}://{self.bucket}"

    def key(self, key: str) -> str:
        """The object name of a storage key: checked, then put below the prefix."""
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in key.split("/")):
            raise InvalidNameError(f"invalid storage key {key!r}")
        return self.prefix + key

    def where(self, key: str | None) -> str:
        """A key's full URL, for messages (the store's URL when ``key`` is None)."""
        return f"{self.scheme}://{self.bucket}/{self.prefix}{key}" if key is not None else self.url


def backend_options(options: dict[str, Any], defaults: dict[str, Any], scheme: str) -> dict[str, Any]:
    """``defaults`` updated with ``options``; unknown options raise a ``TypeError`` that lists the accepted ones."""
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise TypeError(f"unknown option(s) for {scheme}:// stores: {', '.join(unknown)} (accepted: {', '.join(defaults)})")
    return {**defaults, **options}


# --- credentials in endpoint URLs -------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """An endpoint URL split from the credentials it carried (``http://KEY:SECRET@host:9000``).

    ``url`` is credential-free; ``secrets`` holds every form of the credentials worth scrubbing
    from messages: as written in the URL (percent-encoded or not), decoded, and re-encoded.
    """

    url: str
    username: str | None = None
    password: str | None = None
    secrets: tuple[str, ...] = ()


def split_userinfo(endpoint: str) -> Endpoint:
    """``http://key:secret@host:9000`` -> ``Endpoint("http://host:9000", "key", "secret", ...)``.

    Unlike :func:`urllib.parse.urlsplit`, this does not need the userinfo to be percent-encoded: a
    secret holding ``/``, ``:``, ``@``, ``?`` or ``#`` as typed is still recognised as credentials
    (everything up to the last ``@`` is the userinfo, the user ends at the first ``:``), so it never
    stays inside a URL that ends up in a message. An endpoint URL cannot otherwise contain ``@``.
    """
    scheme, sep, rest = endpoint.partition("://")
    if not sep:
        scheme, rest = "", endpoint
    if "@" not in rest:
        return Endpoint(endpoint)
    userinfo, host = rest.rsplit("@", 1)
    raw_user, colon, raw_password = userinfo.partition(":")
    user, password = unquote(raw_user), unquote(raw_password)
    forms = {userinfo, raw_user, raw_password, user, password}
    for value in (user, password, userinfo):
        forms.update((quote(value, safe=""), quote_plus(value, safe=""), quote(value)))
    clean = f"{scheme}://{host}" if sep else host
    return Endpoint(clean, user or None, password or None if colon else None, tuple(sorted(f for f in forms if f)))


_WORD = "A-Za-z0-9"


def scrub(text: str, secrets: Iterable[str | None], mask: str = "***") -> str:
    """``text`` with every whole occurrence of each secret replaced by ``mask``.

    Whole: an occurrence that starts (or ends) with a letter or digit counts only where it is not
    glued to another letter or digit on that side (``%XX`` escapes count as separators), so a short
    key such as ``ab`` is masked in ``key ab/x`` but never garbles ``about``. Longer secrets are
    matched first.
    """
    values = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not values or not text:
        return text
    patterns = []
    for value in values:
        pattern = re.escape(value)
        if value[0].isascii() and value[0].isalnum():
            pattern = rf"(?:(?<![{_WORD}])|(?<=%[0-9A-Fa-f][0-9A-Fa-f])){pattern}"
        if value[-1].isascii() and value[-1].isalnum():
            pattern = rf"{pattern}(?![{_WORD}])"
        patterns.append(pattern)
    return re.sub("|".join(patterns), mask, text)
