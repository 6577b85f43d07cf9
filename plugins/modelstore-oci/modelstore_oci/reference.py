"""``oci://HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST]``: what a reference names, checked once."""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelstore_core.plugin_api import UsageError

# The distribution spec's grammar (https://github.com/opencontainers/distribution-spec, "pulling manifests").
_HOST = r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?"
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPOSITORY = rf"(?P<repository>{_COMPONENT}(?:/{_COMPONENT})*)"
_TAG = r"(?P<tag>[A-Za-z0-9_][A-Za-z0-9._-]{0,127})"
_DIGEST = r"(?P<digest>sha256:[a-f0-9]{64})"
_REFERENCE = re.compile(rf"^oci://{_HOST}/{_REPOSITORY}(?::{_TAG})?(?:@{_DIGEST})?$")
TAG = re.compile(rf"^{_TAG}$")

#: Docker Hub's names for itself, and the host its API answers on.
DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class Reference:
    """A parsed ``oci://`` reference. ``host`` includes the port when one is given."""

    host: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, ref: str) -> Reference:
        text = str(ref)
        if "@" in text.split("://", 1)[-1].split("/", 1)[0]:
            raise UsageError(
                "an oci:// reference holds no credentials: put them in the Docker config (`docker login`) or in"
                " $REGISTRY_USERNAME and $REGISTRY_PASSWORD"
            )
        match = _REFERENCE.match(text)
        if match is None:
            raise UsageError(
                f"{text[:200]!r} is not an OCI reference: oci://HOST[:PORT]/REPOSITORY[:TAG] or .../REPOSITORY@sha256:DIGEST"
                " (repository names are lower case: letters, digits and . _ - separators, parts joined by /)"
            )
        host = match["host"] + (f":{match['port']}" if match["port"] else "")
        repository = match["repository"]
        if match["host"].lower() in DOCKER_HUB:
            host = "registry-1.docker.io" + (f":{match['port']}" if match["port"] else "")
            if "/" not in repository:
                repository = f"library/{repository}"
        return cls(host, repository, match["tag"], match["digest"])

    @property
    def name(self) -> str:
        """The reference without tag or digest: ``oci://host/repository``."""
        return f"oci://{self.host}/{self.repository}"

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.host, self.repository, tag, None)

    def pinned(self, digest: str) -> str:
        """The reference pinned to ``digest`` (the tag kept, for people): ``oci://host/repo:tag@sha256:…``."""
        return f"{self.name}{f':{self.tag}' if self.tag else ''}@{digest}"

    def __str__(self) -> str:
        return f"{self.name}{f':{self.tag}' if self.tag else ''}{f'@{self.digest}' if self.digest else ''}"
