from __future__ import annotations

from collections import Counter

import pytest

from modelstore_core import plugins

#: hook name -> how many times the code under test called it with at least one implementation
#: (recorded on every plugin manager loaded in this run; checked by the hook meta-test, run last)
HOOK_CALLS: Counter[str] = Counter()
#: tests a -k, -m, --deselect or --lf left out of this run
DESELECTED: list[pytest.Item] = []
LAST = "test_every_hook_is_exercised_by_a_test"  # tests/test_hookspecs_documented.py


@pytest.fixture(autouse=True, scope="session")
def hook_calls() -> Counter[str]:
    """Monitor every plugin manager that ``get_plugins()`` loads, for the hook meta-test."""
    load = plugins.load_plugins

    def load_and_monitor() -> plugins.Plugins:
        loaded = load()

        def before(hook_name, hook_impls, kwargs):
            if hook_impls:
                HOOK_CALLS[hook_name] += 1

        loaded.manager.add_hookcall_monitoring(before, lambda *args: None)
        return loaded

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plugins, "load_plugins", load_and_monitor)
        plugins.reset_plugins()
        yield HOOK_CALLS
    plugins.reset_plugins()


@pytest.fixture(scope="session")
def deselected() -> list[pytest.Item]:
    return DESELECTED


def pytest_deselected(items):
    DESELECTED.extend(items)


def pytest_collection_modifyitems(items):
    # The hook meta-test checks what every other test called: it runs after them.
    items.sort(key=lambda item: item.name == LAST)
