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
Override ``store_env`` to pass environment variables (endpoints, credentials) to those processes,
and ``store_options`` for ``ModelStore(url, **options)``.
"""

from .storage_contract import StorageContract
from .store_contract import StoreContract

__all__ = ["StorageContract", "StoreContract"]
