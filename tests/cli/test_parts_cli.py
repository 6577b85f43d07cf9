"""`modelstore info` and `ls` show the parts of a version of several models."""

from __future__ import annotations

import json

from cli_helpers import CLI

from modelstore_core import ModelStore
from modelstore_core.plugin_api import Flavor, hookimpl
from modelstore_core.plugins import get_plugins


class Text:
    """A throwaway flavor plugin: a str as ``text.txt``; ``unsafe=True`` marks it as needing trust."""

    @hookimpl
    def modelstore_serialize(self, model, directory, options):
        if isinstance(model, str):
            (directory / "text.txt").write_text(model)
            return Flavor(name="text", format="txt", plugin="modelstore-test-text", safe=not options.get("unsafe"))


def test_info_and_ls_show_the_parts(tmp_path):
    cli = CLI(tmp_path)
    manager = get_plugins().manager
    plugin = Text()
    manager.register(plugin, name="test-text")
    try:
        store = ModelStore(cli.root, cache_dir=tmp_path / "cache-w")
        store.upload("pair", models={"encoder": "abc", "head": "def"}, part_options={"head": {"unsafe": True}})
    finally:
        manager.unregister(plugin)
    shown = cli.tty("info", "pair", "1").stdout
    assert "part encoder" in shown and "part head" in shown and "text (format txt, by modelstore-test-text)" in shown
    assert shown.count("unsafe: loads only with trust=True") == 2  # the version, and its head
    rows = json.loads(cli("ls", "pair", "--json").stdout)
    assert rows[0]["flavor"] == "parts" and rows[0]["parts"] == {"encoder": "text", "head": "text"}
    assert "parts (encoder: text, head: text)" in cli.tty("ls", "pair").stdout
