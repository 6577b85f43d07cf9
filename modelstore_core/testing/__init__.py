"""The storage conformance kit: the contract every backend must meet, as reusable pytest tests.

Subclass the two classes in your backend's test suite and provide the fixtures::

    from modelstore_core.testing import StorageContract, StoreContract

    class TestMyStorage(StorageContract):
        @pytest.fixture
        def storage(self):            # a fresh, empty storage; small page size to exercise paging
            return MyStorage("my://bucket/" + uuid.uuid4().hex, page_size=7)

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store_url(self):          # a fresh, empty store that other processes can open too
            return "my://bucket/" + uuid.uuid4().hex

``StorageContract`` checks the primitives (put/get/stream, missing keys, listing order and
pagination, create-if-absent and compare-and-swap under races, delete). ``StoreContract``
checks the whole store on top: round trips, states, deletion, deduplication, corruption,
concurrent uploads from several processes, and processes killed in the middle of an upload.
``LivenessContract`` (same fixtures) checks that ``gc`` judges uploads by what the store records:
paused uploads posing as other PID namespaces, hosts and clocks survive it, killed ones are
collected after the grace, and no version loses an object under uploads, deletes and gc at once.
Override ``store_env`` to pass environment variables (endpoints, credentials) to those processes,
and ``store_options`` for ``ModelStore(url, **options)``.

A flavor plugin subclasses ``FlavorContract`` (:mod:`modelstore_core.testing.flavors`): discovery,
a round trip through a fresh store, deduplicated re-uploads, the missing-plugin error, and no
framework import for unrelated uploads.

A backend that talks to a service over HTTP can test its retries with ``FaultContract``: it puts
:class:`~modelstore_core.testing.faults.FaultProxy` (standard library only, also usable on its
own, with :class:`~modelstore_core.testing.faults.ServerProcess` for the test server) between the
client and a local server of the service, and checks that uploads and loads complete through
error answers, dropped connections, lost answers and cut bodies; that a lost answer to the
commit is recognised; and that an upload failing for good leaves nothing visible.
``FeedContract`` (same fixtures) checks the change feed: every committed upload and state move
once and in order under concurrent writer processes, and none lost when a writer is killed
between its commit and its event.
``CopyContract`` checks ``copy_to`` and ``mirror_to`` between two stores (give it a
``source_url`` and a ``target_url``, on any two backends): numbers, records and states kept,
only missing objects moved, conflicts reported, and a copy killed at each step resumed.
:func:`modelstore_core.testing.history.commit_copies` writes 1,000 versions quickly, for tests of
what operations cost at that scale.

The kit is also a pytest plugin (:mod:`.pytest_plugin`), which a suite that uses the kits switches
on (``-p modelstore_core.testing.pytest_plugin``): its asserts are rewritten so a failure shows both
values, and the fixtures ``isolated``, ``store`` and ``fresh`` need no import.
"""

from __future__ import annotations

from importlib import import_module

_CONTRACTS = {
    "CopyContract": ".copy_contract",
    "FaultContract": ".fault_contract",
    "FeedContract": ".feed_contract",
    "FlavorContract": ".flavors",
    "LivenessContract": ".liveness_contract",
    "StorageContract": ".storage_contract",
    "StoreContract": ".store_contract",
    "TamperContract": ".tamper_contract",
}

__all__ = sorted(_CONTRACTS)


def __getattr__(name: str):
    # Imported on first use, after the pytest plugin has registered them for assert rewriting
    # (and so that `python -m modelstore_core.testing.worker` imports neither pytest nor the kits).
    if name in _CONTRACTS:
        return getattr(import_module(_CONTRACTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
