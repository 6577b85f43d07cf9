"""Builtin collector: the git commit, branch and dirty state of the working directory.

Two ``git`` processes run concurrently (status and remotes); ``None`` outside a repository
or without git. Remote URLs are recorded without credentials.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..hookspecs import hookimpl


def _run(cwd: str | None, *args: str) -> subprocess.Popen:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}  # status must not take the index lock
    return subprocess.Popen(
        ["git", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env, text=True
    )


def git_info(cwd: str | None = None) -> dict[str, Any] | None:
    try:
        status = _run(cwd, "status", "--porcelain=v2", "--branch", "--untracked-files=no")
        remotes = _run(cwd, "config", "--get-regexp", r"^remote\..*\.url$")
    except OSError:
        return None  # git is not installed
    out, _ = status.communicate()
    remote_out, _ = remotes.communicate()
    if status.returncode != 0:
        return None  # not a repository
    info: dict[str, Any] = {"commit": None, "branch": None, "dirty": False, "remote": None}
    upstream_remote = None
    for line in out.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split(" ", 2)[2]
            info["commit"] = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line.split(" ", 2)[2]
            info["branch"] = None if head == "(detached)" else head
        elif line.startswith("# branch.upstream "):
            upstream_remote = line.split(" ", 2)[2].split("/", 1)[0]
        elif line and not line.startswith("#"):
            info["dirty"] = True
    urls = {}
    for line in remote_out.splitlines():
        key, _, url = line.partition(" ")
        urls[key[len("remote.") : -len(".url")]] = url
    remote = urls.get(upstream_remote) or urls.get("origin") or next(iter(urls.values()), None)
    info["remote"] = strip_credentials(remote) if remote else None  # never a local path or a credential
    return info


def strip_credentials(url: str) -> str | None:
    """``https://user:token@host/repo?x=y`` -> ``https://host/repo``; scp-like ``git@host:repo`` is kept;
    a remote on the local filesystem (a path, ``file://``) is not recorded: ``None``."""
    if "://" not in url:
        colon, slash = url.find(":"), url.find("/")
        scp_like = colon > 0 and (slash == -1 or colon < slash)
        return url if scp_like else None
    parts = urlsplit(url)
    if parts.scheme == "file":
        return None
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@hookimpl
def modelstore_collect_metadata():
    return {"git": git_info()}
