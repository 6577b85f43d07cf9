"""The conformance kits as a pytest plugin, opt-in: a suite that uses the kits switches it on, as
pytest's own ``pytester`` is (``-p modelstore_core.testing.pytest_plugin`` in the ini file's
``addopts``, or ``pytest_plugins = ["modelstore_core.testing.pytest_plugin"]`` in a top-level
``conftest.py``). It is no ``pytest11`` entry point: installing ``modelstore-core`` adds no
fixture named ``store`` or ``fresh`` to every other project's tests. Switched on, it

* has pytest rewrite the asserts of :mod:`modelstore_core.testing`, so that a failing contract
  check shows what was expected and what came back (pytest only rewrites test modules and the
  plugins it loads, not an installed library's modules);
* provides the fixtures ``isolated`` (the per-user store and cache under ``tmp_path``, every
  plugin enabled and rediscovered around the test), ``store`` (a store in ``tmp_path``),
  ``fresh`` (a factory of new ``ModelStore`` objects on that store, each with a cold cache) and
  ``fast_heartbeat`` (heartbeats every 0.1 s, so that a ``gc`` grace passes quickly).

``isolated`` is used by every kit class; set ``modelstore_isolate = true`` in the pytest ini
options to apply it to every test of a suite as well.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

# The package itself is imported already (it holds this module); its kit modules are not, yet.
_KIT_MODULES = (
    "copy_contract", "fault_contract", "faults", "feed_contract", "flavors", "history", "liveness_contract", "storage_contract",
    "store_contract",
    "tamper_contract",
)  # fmt: skip
pytest.register_assert_rewrite(*(f"modelstore_core.testing.{name}" for name in _KIT_MODULES))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "modelstore_matrix(argname, values, ids=None): a kit test's matrix of cases (modelstore_core.testing.store_contract.matrix)",
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "modelstore_isolate",
        type="bool",
        default=False,
        help="modelstore: give every test its own per-user store and cache (the `isolated` fixture)",
    )


@pytest.fixture
def isolated(tmp_path, monkeypatch) -> Iterator[None]:
    """Never touch the real per-user store or cache; rediscover plugins around the test."""
    from ..plugins import reset_plugins
    from .flavors import isolate

    isolate(tmp_path, monkeypatch)
    yield
    reset_plugins()


@pytest.fixture(autouse=True)
def _modelstore_isolate(request: pytest.FixtureRequest) -> None:
    if request.config.getini("modelstore_isolate"):
        request.getfixturevalue("isolated")


@pytest.fixture
def fast_heartbeat(monkeypatch) -> float:
    """Uploads and ``gc`` in this test (and the processes it starts) beat every 0.1 s, so that the
    shortest grace is half a second (:func:`modelstore_core.testing.liveness_contract.collect_now`)."""
    monkeypatch.setenv("MODELSTORE_HEARTBEAT", "0.1")
    return 0.1


@pytest.fixture
def store(tmp_path):
    """The test's store, ``tmp_path / "store"``, with its cache in ``tmp_path / "cache"``."""
    from .flavors import open_store

    return open_store(tmp_path)


@pytest.fixture
def fresh(tmp_path) -> Callable:
    """A factory of new ``ModelStore`` objects on the test's store, each with a new, cold cache:
    what another process would see."""
    from .flavors import open_store

    count = 0

    def make():
        nonlocal count
        count += 1
        return open_store(tmp_path, cache=f"cache-{count}")

    return make
