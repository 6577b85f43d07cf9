"""Fixtures of the web view's tests: the demo store, the app served by uvicorn on a free 127.0.0.1
port, and Debian's headless Chromium driven by playwright."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from web_helpers import Demo, RequestCounter, Server, build_demo, build_xgboost_like

from modelstore_core import ModelStore

#: The Chromium the tests drive: Debian's package (`apt-get install -y chromium`), never a
#: browser downloaded by playwright.
CHROMIUM = os.environ.get("MODELSTORE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Demo:
    return build_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="session")
def boost(tmp_path_factory) -> ModelStore:
    """A store whose domain ``boost`` holds four versions with xgboost-shaped records."""
    return build_xgboost_like(tmp_path_factory.mktemp("boost"))


@pytest.fixture(scope="session")
def counted(demo) -> RequestCounter:
    """The request counter of the store the session's server shows."""
    return RequestCounter(demo.store)


@pytest.fixture(scope="session")
def server(demo, counted) -> Iterator[Server]:
    """The demo store served with caching off: every page reads the store (what the request bounds measure)."""
    s = Server(demo.store, ttl=0)
    yield s
    s.close()


@pytest.fixture
def serve():
    """Serve another store: ``serve(store, ttl=...)`` -> a running :class:`Server`, stopped after the test."""
    started: list[Server] = []

    def start(store: ModelStore, ttl: float = 0) -> Server:
        started.append(Server(store, ttl))
        return started[-1]

    yield start
    for s in started:
        s.close()


# --- the browser ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser_context():
    """A persistent context of Debian's headless Chromium, with a fresh profile directory."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"Chromium is not installed at {CHROMIUM}: install Debian's `chromium` package (`apt-get install -y chromium`)")
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="modelstore-web-chromium-")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            accept_downloads=True,
            viewport={"width": 1280, "height": 800},
        )
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser_context):
    p = browser_context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    yield p
    p.close()
    assert errors == [], f"script errors on the page: {errors}"


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory) -> Path:
    """Where the main pages' screenshots go: ``$MODELSTORE_WEB_SCREENSHOTS``, else ``screenshots``
    in pytest's base temporary directory (kept for the last three runs, then removed by pytest)."""
    where = Path(os.environ.get("MODELSTORE_WEB_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots", numbered=False))
    where.mkdir(parents=True, exist_ok=True)
    return where
