"""Builtin collector: the Python runtime that produced the version."""

from __future__ import annotations

import sys
from functools import cache

from ..hookspecs import hookimpl


@cache
def runtime() -> dict[str, str]:
    import platform  # slow to import: only when a version is uploaded

    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
        "machine": platform.machine(),
        "byteorder": sys.byteorder,
    }


@hookimpl
def modelstore_collect_metadata():
    return {"runtime": runtime()}
