"""Credentials: from $REGISTRY_USERNAME/$REGISTRY_PASSWORD or the Docker config, answered to a
Basic challenge (an htpasswd registry) or exchanged for a Bearer token (a registry that trusts a
token service, as GHCR, Docker Hub and Harbor do); never printed."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from conftest import Registry, open_store

from modelstore_core.errors import ModelStoreError

USER, PASSWORD = "alice", "s3cret-Pa55word"


@pytest.fixture(scope="module")
def htpasswd_registry(tmp_path_factory):
    import bcrypt

    directory = tmp_path_factory.mktemp("htpasswd-registry")
    (directory / "htpasswd").write_text(f"{USER}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()}\n")
    server = Registry(directory, auth={"htpasswd": {"realm": "test", "path": str(directory / "htpasswd")}}).start()
    yield server
    server.stop()


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    monkeypatch.delenv("REGISTRY_USERNAME", raising=False)
    monkeypatch.delenv("REGISTRY_PASSWORD", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))  # never the developer's own


@pytest.fixture
def version(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"weights" * 100)
    store = open_store(tmp_path, "a")
    store.upload("churn", files=[tmp_path / "model.bin"])
    return store


def test_without_credentials_the_error_says_where_to_put_them(htpasswd_registry, version, no_credentials):
    with pytest.raises(ModelStoreError, match=r"needs credentials: `docker login 127\.0\.0\.1:\d+`, or set \$REGISTRY_USERNAME"):
        version.push("churn", f"oci://{htpasswd_registry.host}/models/churn", plain_http=True)


def test_credentials_from_the_environment(tmp_path, htpasswd_registry, version, no_credentials, monkeypatch):
    monkeypatch.setenv("REGISTRY_USERNAME", USER)
    monkeypatch.setenv("REGISTRY_PASSWORD", PASSWORD)
    digest = version.push("churn", f"oci://{htpasswd_registry.host}/models/churn", plain_http=True)
    assert open_store(tmp_path, "b").pull(f"oci://{htpasswd_registry.host}/models/churn@{digest}", plain_http=True).version == 1


def test_credentials_from_the_docker_config(tmp_path, htpasswd_registry, version, no_credentials):
    docker = tmp_path / "docker"
    docker.mkdir()
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (docker / "config.json").write_text(json.dumps({"auths": {f"http://{htpasswd_registry.host}": {"auth": auth}}}))
    version.push("churn", f"oci://{htpasswd_registry.host}/models/from-config", plain_http=True)


def test_wrong_credentials_are_named_never_shown(tmp_path, htpasswd_registry, version, no_credentials):
    env = {**os.environ, "REGISTRY_USERNAME": USER, "REGISTRY_PASSWORD": "not-" + PASSWORD, "DOCKER_CONFIG": str(tmp_path / "docker")}
    for extra in ([], ["--debug"]):
        done = subprocess.run(
            [sys.executable, "-m", "modelstore_core", "push", "churn", f"oci://{htpasswd_registry.host}/models/churn", "--plain-http",
             "--store", str(tmp_path / "a"), *extra],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 1
        assert "refused the credentials of 'alice' (from $REGISTRY_USERNAME/$REGISTRY_PASSWORD)" in " ".join(done.stderr.split())
        assert PASSWORD not in done.stdout + done.stderr
        assert base64.b64encode(f"{USER}:not-{PASSWORD}".encode()).decode() not in done.stdout + done.stderr


# --- a token service ---------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenService:
    """What GHCR, Docker Hub or Harbor run beside a registry: Basic credentials in, a signed JWT out
    (ES256, its certificate in ``x5c``; the registry trusts the certificate)."""

    def __init__(self, directory):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token-service")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )  # fmt: skip
        self.bundle = directory / "token.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.requests: list[dict] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                query = parse_qs(urlparse(self.path).query)
                given = self.headers.get("Authorization", "")
                service.requests.append({"scope": query.get("scope", [""])[0], "basic": given.startswith("Basic ")})
                if given != "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode():
                    self.send_response(401)
                    self.end_headers()
                    return
                body = json.dumps({"token": service.token(query.get("scope", [""])[0])}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.server.server_port}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, scope: str) -> str:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        access = []
        if scope.startswith("repository:"):
            _, name, actions = scope.split(":")
            access.append({"type": "repository", "name": name, "actions": actions.split(",")})
        now = int(time.time())
        der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(der).decode()]}
        claims = {"iss": "test-issuer", "sub": USER, "aud": "test-registry", "exp": now + 300, "nbf": now - 60, "iat": now,
                  "jti": hashlib.sha256(os.urandom(16)).hexdigest(), "access": access}  # fmt: skip
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def stop(self):
        self.server.shutdown()


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory):
    directory = tmp_path_factory.mktemp("token-registry")
    service = TokenService(directory)
    auth = {"token": {"realm": service.realm, "service": "test-registry", "issuer": "test-issuer", "rootcertbundle": str(service.bundle)}}
    server = Registry(directory, auth=auth).start()
    server.tokens = service
    yield server
    server.stop()
    service.stop()


def test_a_bearer_token_from_the_token_service(tmp_path, token_registry, version, no_credentials, monkeypatch):
    ref = f"oci://{token_registry.host}/team/churn"
    with pytest.raises(ModelStoreError, match="needs credentials"):
        version.push("churn", ref, plain_http=True)
    monkeypatch.setenv("REGISTRY_USERNAME", USER)
    monkeypatch.setenv("REGISTRY_PASSWORD", PASSWORD)
    token_registry.tokens.requests.clear()
    digest = version.push("churn", ref, plain_http=True)
    scopes = [r["scope"] for r in token_registry.tokens.requests]
    assert "repository:team/churn:pull,push" in scopes and all(r["basic"] for r in token_registry.tokens.requests)
    assert open_store(tmp_path, "b").pull(f"{ref}@{digest}", plain_http=True).version == 1
    monkeypatch.setenv("REGISTRY_PASSWORD", "wrong")
    with pytest.raises(ModelStoreError, match="refused the credentials of 'alice'") as raised:
        open_store(tmp_path, "c").pull(f"{ref}:1", plain_http=True)
    assert "wrong" not in str(raised.value)
