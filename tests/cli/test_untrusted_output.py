"""Everything the CLI prints from a store is escaped: the store may have been written by another tool."""

from __future__ import annotations

import json

from modelstore_core import ModelStore
from modelstore_core.protocol import keys

HOSTILE = "\x1b[31mred\x1b[0m\nforged\trow\x9b2J\x07"


def plant_tag(root, domain: str, version: int, value: str) -> None:
    store = ModelStore(root)
    key = keys.version_key(domain, version)
    data, token = store.storage.read(key)
    doc = json.loads(data)
    doc["tags"]["note"] = value
    doc["model"] = {"comment": value}
    assert store.storage.compare_and_swap(key, json.dumps(doc).encode(), token)


def test_control_characters_from_a_store_never_reach_the_terminal_raw(cli, files):
    cli("upload", "d", str(files["model.bin"]))
    cli("upload", "d", str(files["config.json"]))
    plant_tag(cli.root, "d", 1, HOSTILE)

    listed = cli("ls", "d")
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 2  # no forged row
    assert [len(row) for row in listed.lines] == [10, 10]  # no forged column
    for output in (listed.stdout, cli("info", "d", "1").stdout, cli("ls", "d", "--json").stdout, cli("diff", "d", "1", "2").stdout):
        assert "\x1b" not in output and "\x9b" not in output and "\x07" not in output
    assert json.loads(cli("info", "d", "1", "--json").stdout)["tags"]["note"] == HOSTILE  # JSON keeps the value, escaped

    shown = cli.tty("info", "d", "1")  # rich output on a terminal
    assert "\\x1b[31mred" in shown.stdout and "\x1b[31mred" not in shown.stdout


def test_a_corrupt_record_is_skipped_with_a_note_and_ls_goes_on(cli, files):
    cli("upload", "d", str(files["model.bin"]))
    cli("upload", "d", str(files["config.json"]))
    store = ModelStore(cli.root)
    store.storage.put(keys.version_key("d", 1), __import__("io").BytesIO(b'{"truncated": '))
    listed = cli("ls", "d")
    assert listed.returncode == 0 and [row[0] for row in listed.lines] == ["2"]
    assert "skipped" in listed.stderr and "0000000001.json" in listed.stderr
    store.storage.put("domains/not a domain!/versions/x.json", __import__("io").BytesIO(b"junk"))
    domains = cli("ls")
    assert domains.returncode == 0 and [row[:3] for row in domains.lines] == [["d", "2", "2"]]
    verify = cli("verify")
    assert verify.returncode == 1 and verify.lines == [["not a domain!", "", "", "stray"], ["d", "1", "", "corrupt-record"]]
    info = cli("info", "d", "1")
    assert info.returncode == 1 and "is not valid JSON" in info.stderr and "Traceback" not in info.stderr


def test_an_inflated_record_is_refused_and_long_values_are_clipped(cli, files):
    """A record padded past its 16 MiB limit: `info` printed all of it (95 MB for 85 MB of tags);
    now it says which document is too large. Within the limit, a terminal shows the first 1,000
    characters of a value and points to --json, which prints it whole."""
    from modelstore_core.protocol import limits

    cli("upload", "d", str(files["model.bin"]))
    cli("upload", "d", str(files["config.json"]))
    long_value = "y" * 50_000
    plant_tag(cli.root, "d", 2, long_value)
    shown = cli.tty("info", "d", "2")
    assert len(shown.stdout) < 20_000 and "49000 more characters" in shown.stdout and "--json" in shown.stdout
    assert json.loads(cli("info", "d", "2", "--json").stdout)["tags"]["note"] == long_value

    plant_tag(cli.root, "d", 1, "x" * (limits.RECORD_BYTES + 1000))
    info = cli("info", "d", "1")
    assert info.returncode == 1 and len(info.stdout) < 1000, info.stdout[:200]
    assert "0000000001.json" in info.stderr and "over the 16777216 byte limit for a version record" in info.stderr
