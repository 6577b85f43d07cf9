"""``KNOWN_PLUGINS`` (the install hints shown when a plugin is missing) says what the first-party
plugins themselves declare: their flavor and modules, schemes, transports and commands. A plugin states each
fact once; the catalogue is checked against it here, both ways."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from modelstore_core.plugin_api import FlavorPlugin, StoragePlugin, TransportPlugin
from modelstore_core.plugins import KNOWN_PLUGINS

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
#: A template to copy, never published: no install hint points at it.
NOT_PUBLISHED = {"modelstore-example"}


def entry_point(distribution: str) -> str:
    """The ``module[:object]`` the distribution's ``modelstore`` entry point names."""
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")
    project = tomllib.loads((PLUGINS / distribution / "pyproject.toml").read_text())["project"]
    [target] = project["entry-points"]["modelstore"].values()
    return target


@pytest.fixture
def first_party(monkeypatch) -> dict[str, object]:
    """Each first-party plugin's registered object, imported from this checkout (not installed in
    this session; importing a plugin imports no framework)."""
    distributions = sorted(p.name for p in PLUGINS.iterdir() if (p / "pyproject.toml").is_file() and p.name not in NOT_PUBLISHED)
    targets = {distribution: entry_point(distribution).partition(":") for distribution in distributions}
    for distribution, (module, _, _) in targets.items():
        monkeypatch.syspath_prepend(str(PLUGINS / distribution))
        monkeypatch.delitem(sys.modules, module, raising=False)  # gone again after the test (lightning imports torch's)
    loaded = {}
    for distribution, (module, _, name) in targets.items():
        plugin = importlib.import_module(module)
        loaded[distribution] = getattr(plugin, name) if name else plugin
    return loaded


def declared(plugins: dict[str, object]) -> dict[str, dict[str, str]]:
    """What the plugins say about themselves, shaped like ``KNOWN_PLUGINS``."""
    facts: dict[str, dict[str, str]] = {"flavor": {}, "module": {}, "scheme": {}, "transport": {}, "command": {}}

    def add(kind: str, key: str, distribution: str) -> None:
        assert facts[kind].setdefault(key, distribution) == distribution, f"{kind} {key!r} is claimed twice"

    for distribution, plugin in plugins.items():
        if isinstance(plugin, FlavorPlugin):
            add("flavor", plugin.flavor, distribution)
            for module in plugin.modules:
                add("module", module, distribution)
        if isinstance(plugin, StoragePlugin):
            for scheme in plugin.schemes:
                add("scheme", scheme, distribution)
        if isinstance(plugin, TransportPlugin):
            for scheme in plugin.transports:
                add("transport", scheme, distribution)
        commands = getattr(plugin, "modelstore_cli_commands", None)
        for command in commands() if commands else ():
            add("command", command.name, distribution)
    return facts


def test_the_catalogue_is_what_the_plugins_declare(first_party):
    assert any(isinstance(p, FlavorPlugin) for p in first_party.values())  # the plugins were really found
    facts = declared(first_party)
    assert set(facts) == set(KNOWN_PLUGINS)
    for kind, catalogued in KNOWN_PLUGINS.items():
        wrong = {
            key: (catalogued.get(key), facts[kind].get(key))
            for key in {*catalogued, *facts[kind]}
            if catalogued.get(key) != facts[kind].get(key)
        }
        assert not wrong, f"KNOWN_PLUGINS[{kind!r}] disagrees with the plugins ({{key: (catalogue, plugin)}}): {wrong}"


def test_every_plugin_on_a_base_is_registered_as_its_object(first_party):
    """Entry points name the plugin object (``modelstore_x:plugin``); only a plugin of plain hook
    functions (modelstore-web: one command) names its module."""
    for distribution, plugin in first_party.items():
        on_base = isinstance(plugin, (FlavorPlugin, StoragePlugin, TransportPlugin))
        assert on_base == (":" in entry_point(distribution)), distribution
