"""The rules for every name: checked before anything is written, and again on everything read back."""

from __future__ import annotations

import math
import re
from typing import Any

from .errors import InvalidNameError

MAX_NAME_LENGTH = 128
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# A stored file path: name components separated by "/", same alphabet plus spaces, "+", "=", "@", ",".
_COMPONENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._\-+=@, ]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


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
    """A version number: a positive int below 10**10 (``"3"`` is accepted from command lines)."""
    if isinstance(version, bool):
        raise InvalidNameError(f"invalid version {version!r}: versions are positive integers")
    if isinstance(version, str) and version.isdigit():
        version = int(version)
    if not isinstance(version, int) or version < 1 or version >= 10**10:
        raise InvalidNameError(f"invalid version {version!r}: versions are positive integers")
    return version


def check_file_path(path: str) -> str:
    """A stored file's relative path (``"model.onnx"``, ``"tokenizer/vocab.txt"``): never absolute,
    never ``..``, no hidden parts, so it can be joined below any directory safely."""
    parts = path.split("/") if isinstance(path, str) else [""]
    if not path or len(path) > 1024 or any(not _COMPONENT.fullmatch(p) or ".." in p for p in parts):
        raise InvalidNameError(
            f"invalid file name {path!r}: use letters, digits and '._-+=@, ' in '/'-separated parts, no hidden files, no '..'"
        )
    return path


def check_paths_round_trip(paths: list[str]) -> None:
    """The files of one version must be writable side by side: no name twice, and no file that is
    also the directory of another (``m`` and ``m/x``, or a file named ``extras`` beside extras)."""
    seen: set[str] = set()
    for path in paths:
        if path in seen:
            raise InvalidNameError(f"two files would be stored as {path!r}; rename one of them")
        seen.add(path)
    for path in paths:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in seen:
                raise InvalidNameError(f"{'/'.join(parts[:i])!r} is both a file and the directory of {path!r}; rename one of them")


def tag_problem(name: Any, value: Any) -> str | None:
    """Why a tag cannot be stored, or ``None``. Names follow the domain-name rules; values are
    strings without control characters, booleans or finite numbers (kept as they are)."""
    try:
        check_name(name, "tag name")
    except InvalidNameError as exc:
        return str(exc)
    if isinstance(value, str):
        if _CONTROL.search(value):
            return f"tag {name!r} holds a control character (newline, escape...): {value[:40]!r}"
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"tag {name!r} is {value}: tags hold finite numbers"
    if isinstance(value, (bool, int, float)):
        return None
    return f"tag {name!r} must be a string, number or boolean, not {type(value).__name__}"


def check_tags(tags: object) -> dict[str, Any]:
    """Tags: a dict of names to strings, booleans or finite numbers (their type is kept)."""
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise InvalidNameError("tags must be a dict of names to strings or numbers")
    for key, value in tags.items():
        if problem := tag_problem(key, value):
            raise InvalidNameError(problem)
    return dict(tags)
