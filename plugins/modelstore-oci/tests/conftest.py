"""A real registry on 127.0.0.1 (Debian's ``docker-registry``: the CNCF distribution server) and an
independent client (Debian's ``skopeo``), each skipped with the package to install when absent."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from modelstore_core import ModelStore
from modelstore_core.testing.faults import ServerProcess


def needs(program: str, package: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"needs Debian's {package} package (`apt-get install {package}`)")
    return path


class Registry(ServerProcess):
    """``docker-registry serve CONFIG`` on a free port, its blobs and manifests under ``root``."""

    def __init__(self, directory: Path, auth: dict | None = None):
        self.root = directory / "data"
        self.config = directory / "config.yml"
        config = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.root)}, "delete": {"enabled": True}},
            "http": {"addr": "127.0.0.1:0", "secret": "test-secret"},
        }
        if auth:
            config["auth"] = auth
        super().__init__(
            lambda port: [needs("docker-registry", "docker-registry"), "serve", self._write(config, port)], directory / "registry.log"
        )

    def _write(self, config: dict, port: int) -> Path:
        config["http"]["addr"] = f"127.0.0.1:{port}"
        self.config.write_text(json.dumps(config))  # YAML is a superset of JSON
        return self.config

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def blob_path(self, digest: str) -> Path:
        """Where the registry keeps a blob's bytes (what someone with access to its disk can edit)."""
        hex_ = digest.split(":", 1)[1]
        return self.root / "docker" / "registry" / "v2" / "blobs" / "sha256" / hex_[:2] / hex_ / "data"


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    needs("docker-registry", "docker-registry")
    server = Registry(tmp_path_factory.mktemp("registry")).start()
    yield server
    server.stop()


@pytest.fixture
def repo(registry) -> str:
    """A fresh repository of the session's registry: ``oci://127.0.0.1:PORT/models/<random>``."""
    return f"oci://{registry.host}/models/m{uuid.uuid4().hex[:12]}"


@pytest.fixture
def skopeo():
    program = needs("skopeo", "skopeo")

    def run(*args: str) -> bytes:
        done = subprocess.run(
            [program, "--insecure-policy", *args], capture_output=True, timeout=120, check=False, env={"PATH": "/usr/bin:/bin"}
        )
        if done.returncode != 0:
            raise AssertionError(f"skopeo {' '.join(args)} failed: {done.stderr.decode()[-2000:]}")
        return done.stdout

    return run


def open_store(tmp_path: Path, name: str, **options) -> ModelStore:
    return ModelStore(tmp_path / name, cache_dir=tmp_path / f"cache-{name}", **options)


def docker_ref(ref: str) -> str:
    """skopeo's name for an ``oci://`` reference."""
    return "docker://" + ref.removeprefix("oci://")


def writes(log) -> list[str]:
    """The writes a FaultProxy saw, by kind: ``upload`` (a blob upload started), ``chunk``, ``blob
    <digest>`` (an upload finished), ``manifest <reference>``."""
    found = []
    for method, target, _ in log:
        path, _, query = target.partition("?")
        if method == "POST" and path.endswith("/blobs/uploads/"):
            found.append("upload")
        elif method == "PATCH":
            found.append("chunk")
        elif method == "PUT" and "/blobs/uploads/" in path:
            found.append("blob " + dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("digest", "").replace("%3A", ":"))
        elif method == "PUT" and "/manifests/" in path:
            found.append("manifest " + path.rsplit("/manifests/", 1)[1])
    return found


# --- the registry's API, spoken directly (not through the code under test) ---------------------------


def api(ref: str, path: str, method: str = "GET", data: bytes | None = None, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """One request to ``/v2/<repository>/<path>`` of the registry ``ref`` names."""
    import urllib.error
    import urllib.request

    host, repository = ref.removeprefix("oci://").split("/", 1)
    repository = repository.split("@")[0].split(":")[0]
    request = urllib.request.Request(f"http://{host}/v2/{repository}/{path}", data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


ACCEPT = {"Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"}


def manifest_of(ref: str, reference: str) -> dict:
    status, _, body = api(ref, f"manifests/{reference}", headers=ACCEPT)
    assert status == 200, body
    return json.loads(body)


def put_blob(ref: str, data: bytes) -> str:
    import hashlib

    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    status, headers, _ = api(ref, "blobs/uploads/", "POST", b"")
    assert status == 202
    location = headers["Location"].split("/v2/", 1)[1].split("/", 0)[0]
    path = location.split("/blobs/", 1)[1]
    status, _, body = api(
        ref, f"blobs/{path}{'&' if '?' in path else '?'}digest={digest}", "PUT", data, {"Content-Type": "application/octet-stream"}
    )
    assert status == 201, body
    return digest


def put_manifest(ref: str, reference: str, manifest: dict) -> str:
    import hashlib

    data = json.dumps(manifest).encode()
    status, _, body = api(ref, f"manifests/{reference}", "PUT", data, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert status == 201, body
    return "sha256:" + hashlib.sha256(data).hexdigest()
