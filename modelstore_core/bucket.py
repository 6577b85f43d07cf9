"""Helpers for object-store backends whose URLs read ``scheme://bucket/prefix`` (S3, GCS, ...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

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
