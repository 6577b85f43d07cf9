"""Credentials for a registry, and the answers to its challenges (Basic, or a Bearer token).

Credentials come from ``$REGISTRY_USERNAME``/``$REGISTRY_PASSWORD``, else from the Docker config
(``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``): an ``auths`` entry, or a credential
helper (``credHelpers``, ``credsStore``: ``docker-credential-<name> get``). They are sent only to
the registry and the token service it names, and never appear in a message, a ``repr`` or a log.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from modelstore_core.plugin_api import ModelStoreError

#: How the Docker config names Docker Hub.
DOCKER_HUB_KEY = "https://index.docker.io/v1/"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    #: where they came from, for messages ("$REGISTRY_USERNAME", "~/.docker/config.json")
    source: str = ""

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def docker_config_path() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"


def _config_key(host: str) -> list[str]:
    """The keys the Docker config may use for ``host``."""
    if host.split(":")[0] in ("registry-1.docker.io", "docker.io", "index.docker.io"):
        return [DOCKER_HUB_KEY, "docker.io", "index.docker.io", "registry-1.docker.io"]
    return [host]


def _normalise(key: str) -> str:
    """``https://host/v1/`` -> ``host`` (the Docker config keeps what `docker login` was given)."""
    return re.sub(r"^[a-z]+://", "", key).split("/", 1)[0]


def find_credentials(host: str) -> Credentials | None:
    """The credentials for ``host``: the environment first, then the Docker config; ``None`` when neither has any."""
    user, password = os.environ.get("REGISTRY_USERNAME"), os.environ.get("REGISTRY_PASSWORD")
    if user and password is not None:
        return Credentials(user, password, "$REGISTRY_USERNAME/$REGISTRY_PASSWORD")
    path = docker_config_path()
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ModelStoreError(f"cannot read the Docker config {path}: {type(exc).__name__}; fix or remove it") from None
    if not isinstance(config, dict):
        return None
    wanted = _config_key(host)
    helpers = config.get("credHelpers") if isinstance(config.get("credHelpers"), dict) else {}
    for key in wanted:
        if isinstance(helpers.get(key), str):
            return _from_helper(helpers[key], key)
    auths = config.get("auths") if isinstance(config.get("auths"), dict) else {}
    for key, entry in auths.items():
        if isinstance(entry, dict) and (key in wanted or _normalise(key) in wanted):
            found = _from_entry(entry, str(path))
            if found is not None:
                return found
    if isinstance(config.get("credsStore"), str):
        return _from_helper(config["credsStore"], wanted[0])
    return None


def _from_entry(entry: dict, source: str) -> Credentials | None:
    if isinstance(entry.get("auth"), str) and entry["auth"]:
        try:
            user, sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise ModelStoreError(f"the Docker config {source} holds an auth entry that is not base64 of user:password") from None
        if sep:
            return Credentials(user, password, source)
    if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
        return Credentials(entry["username"], entry["password"], source)
    return None


def _from_helper(name: str, server: str) -> Credentials | None:
    program = shutil.which(f"docker-credential-{name}")
    if program is None:
        raise ModelStoreError(f"the Docker config names the credential helper docker-credential-{name}, which is not on PATH")
    try:
        done = subprocess.run([program, "get"], input=server.encode(), capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelStoreError(f"docker-credential-{name} failed: {type(exc).__name__}") from None
    if done.returncode != 0:
        return None  # the helper has nothing for this server
    try:
        answer = json.loads(done.stdout)
        return Credentials(str(answer["Username"]), str(answer["Secret"]), f"docker-credential-{name}")
    except (ValueError, KeyError, TypeError):
        raise ModelStoreError(f"docker-credential-{name} answered something else than its JSON") from None


# --- challenges ------------------------------------------------------------------------------------

_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class Challenge:
    """A ``WWW-Authenticate`` header: ``Basic realm=...`` or ``Bearer realm=...,service=...,scope=...``."""

    scheme: str
    params: dict[str, str]

    @classmethod
    def parse(cls, header: str) -> Challenge | None:
        scheme, _, rest = header.strip().partition(" ")
        if scheme.lower() not in ("basic", "bearer"):
            return None
        return cls(scheme.lower(), dict(_PARAM.findall(rest)))
