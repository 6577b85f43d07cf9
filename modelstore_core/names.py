"""Validation of every user-supplied name before anything is written."""

from __future__ import annotations

import re

from .errors import InvalidNameError

MAX_NAME_LENGTH = 128
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# A stored file path: name components separated by "/", same alphabet plus spaces, "+", "=", "@", ",".
_COMPONENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._\-+=@, ]*")


def check_name(name: object, what: str = "name") -> str:
    """Check a domain or state name: letters, digits, ``.``, ``_``, ``-``; no ``..``; 1-128 characters."""
    if not isinstance(name, str):
        raise InvalidNameError(f"{what} must be a string, not {type(name).__name__}")
    if not name:
        raise InvalidNameError(f"{what} must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(f"{what} {name[:20]!r}… is longer than {MAX_NAME_LENGTH} characters")
    if not _NAME.fullmatch(name) or ".." in name:
        raise InvalidNameError(
            f"invalid {what} {name!r}: use letters, digits, '.', '_' and '-', starting with a letter or digit"
            " (no path separators, spaces or '..')"
        )
    return name


def check_version(version: object) -> int:
    """A version number: a positive int (``"3"`` is accepted from command lines)."""
    if isinstance(version, bool):
        raise InvalidNameError(f"invalid version {version!r}: versions are positive integers")
    if isinstance(version, str) and version.isdigit():
        version = int(version)
    if not isinstance(version, int) or version < 1 or version >= 10**10:
        raise InvalidNameError(f"invalid version {version!r}: versions are positive integers")
    return version


def check_file_path(path: str) -> str:
    """A stored file's relative path (``"model.onnx"``, ``"tokenizer/vocab.txt"``)."""
    parts = path.split("/")
    if not path or len(path) > 1024 or any(not _COMPONENT.fullmatch(p) or ".." in p for p in parts):
        raise InvalidNameError(
            f"invalid file name {path!r}: use letters, digits and '._-+=@, ' in '/'-separated parts,"
            " no hidden files, no '..'"
        )
    return path


def check_tags(tags: object) -> dict[str, str]:
    """Tags: a dict of short string keys to string values."""
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise InvalidNameError("tags must be a dict of strings to strings")
    out = {}
    for key, value in tags.items():
        check_name(key, "tag name")
        if not isinstance(value, (str, int, float, bool)):
            raise InvalidNameError(f"tag {key!r} must be a string or number, not {type(value).__name__}")
        out[key] = value if isinstance(value, str) else str(value)
    return out
