"""The life of a model after upload: lineage, model cards, retention, and the change feed's other events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from markdown_it import MarkdownIt

from modelstore_core import CorruptRecordError, ModelStore, UsageError
from modelstore_core.protocol import keys, limits
from modelstore_core.protocol.liveness import minimum_grace
from modelstore_core.storage import ObjectInfo
from modelstore_core.testing.faults import HANG_TIMEOUT
from modelstore_core.testing.tamper_contract import edit_record, put


@pytest.fixture
def model(tmp_path) -> Path:
    path = tmp_path / "model.bin"
    path.write_bytes(os.urandom(2000))
    return path


def new_file(tmp_path: Path, name: str, size: int = 3000) -> Path:
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    return path


# --- lineage ---------------------------------------------------------------------------------------


def test_parents_are_resolved_against_the_store_and_must_exist(store: ModelStore, model):
    base = store.upload("churn", files=[model])
    store.set_state("churn", 1, "production")
    tuned = store.upload("churn", files=[model], parents=["churn:1"])
    assert tuned.parents == ["churn:1"] and store.info("churn", 2).parents == ["churn:1"]
    distilled = store.upload("small", files=[model], parents=[tuned, "churn@production", "churn:1"])
    assert distilled.parents == ["churn:2", "churn:1"]  # a state resolved to the version it names; once each
    assert base.parents == []
    for bad, message in (
        (["churn:9"], "churn:9 is not a version of this store"),
        (["nope:1"], "nope:1 is not a version of this store"),
        (["churn@staging"], "churn@staging names no version"),
        (["churn"], "is not a version: give DOMAIN:VERSION"),
        (["churn:0"], "is not a version"),
        ([3], "is not a version"),
        ("churn:1:2", "is not a version"),
    ):
        with pytest.raises(UsageError, match=message):
            store.upload("churn", files=[model], parents=bad)
    assert store.storage.stat(keys.claim_key("churn", 3)) is None  # refused before anything was written
    with pytest.raises(UsageError, match="more than 64"):
        store.upload("churn", files=[model], parents=[f"churn:{n}" for n in range(1, 70)])


def test_stored_parents_are_validated(store: ModelStore, model):
    store.upload("churn", files=[model])
    store.upload("churn", files=[model], parents=["churn:1"])
    for value, field in ((["churn:1", "churn:1"], "parents"), ("churn:1", "parents"), (["../x:1"], "parents[0]"), ([1], "parents[0]")):
        edit_record(store, "churn", 2, lambda doc, value=value: doc.update(parents=value))
        with pytest.raises(CorruptRecordError) as err:
            ModelStore(store.url, cache_dir=store.cache.root.parent / "fresh").info("churn", 2)
        assert err.value.field == field


def test_lineage_shows_parents_children_data_and_git(store: ModelStore, tmp_path):
    train = new_file(tmp_path, "train.csv")
    store.upload("churn", files=[new_file(tmp_path, "a")], data={"train": train})
    store.upload("churn", files=[new_file(tmp_path, "b")], parents=["churn:1"], data={"train": train})
    store.upload("churn", files=[new_file(tmp_path, "c")], parents=["churn:2"])
    store.upload("small", files=[new_file(tmp_path, "d")], parents=["churn:2", "churn:1"])
    root = store.lineage("churn", 2)
    assert [n.ref for n in root.parents] == ["churn:1"]
    assert [n.ref for n in root.children] == ["churn:3", "small:1"]
    [parent] = root.parents
    assert parent.exists and parent.flavor == "files" and set(parent.data) == {"train"} and len(parent.data["train"]) == 64
    grand = store.lineage("churn", 1)
    assert [n.ref for n in grand.children] == ["churn:2", "small:1"]
    assert [n.ref for n in grand.children[0].children] == ["churn:3"]  # small:1 is shown once, under churn:1
    assert [n.ref for n in store.lineage("churn", 1, depth=1).children[0].children] == []
    assert store.lineage("churn", 3).to_json()["parents"][0]["parents"][0]["version"] == 1
    store.delete("churn", 1)
    [missing] = store.lineage("churn", 2).parents
    assert (missing.ref, missing.exists) == ("churn:1", False)


def test_a_copy_keeps_its_parents(store: ModelStore, model, tmp_path):
    store.upload("churn", files=[model])
    store.upload("churn", files=[model], parents=["churn:1"])
    other = ModelStore(tmp_path / "other", cache_dir=tmp_path / "other-cache")
    store.copy_to(other, select=["churn:2"])
    assert other.info("churn", 2).parents == ["churn:1"]
    [parent] = other.lineage("churn", 2).parents
    assert not parent.exists  # not copied along: shown as missing
    assert store.compare("churn", [1, 2]).row("parents", "parents").values == [None, ["churn:1"]]


# --- model cards ----------------------------------------------------------------------------------


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    head, _, _ = card[4:].partition("\n---\n")
    return yaml.safe_load(head)


def test_card_is_a_hugging_face_readme(store: ModelStore, tmp_path):
    test = new_file(tmp_path, "test.csv")
    store.upload("churn", files=[new_file(tmp_path, "a")])
    card = {"description": "Predicts churn.\n\nSecond paragraph.", "intended_use": "Ranking accounts", "license": "apache-2.0"}
    v = store.upload(
        "churn", files=[new_file(tmp_path, "b")], parents=["churn:1"], metrics={"auc": 0.91, "log_loss": 0.3},
        params={"depth": 3}, data={"test": test}, tags={"team": "risk"}, card={**card, "task": "tabular-classification"},
    )  # fmt: skip
    store.set_state("churn", v.version, "production")
    text = store.card("churn")
    meta = front_matter(text)
    assert meta["license"] == "apache-2.0" and meta["library_name"] == "files"
    assert meta["tags"] == ["modelstore", "files", "team=risk"]
    assert meta["base_model"] == ["churn:1"] and meta["datasets"] == ["test"]
    [index] = meta["model-index"]
    assert index["name"] == "churn:2"
    [result] = index["results"]
    assert result["task"] == {"type": "tabular-classification"} and result["dataset"] == {"name": "test", "type": "test"}
    assert result["metrics"] == [{"type": "auc", "value": 0.91, "name": "auc"}, {"type": "log_loss", "value": 0.3, "name": "log_loss"}]
    for heading in (
        "# churn version 2",
        "## Intended use",
        "## Lineage",
        "## Data",
        "## Metrics",
        "## Parameters",
        "## Environment",
        "## Files",
    ):
        assert f"\n{heading}\n" in text
    assert "Predicts churn\\.\n\nSecond paragraph\\." in text or "Predicts churn.\n\nSecond paragraph." in text
    assert "states: production" in text
    assert store.card("churn", 1).startswith("---\nlibrary_name: ")  # no card text: the record's facts still
    for bad, message in (
        ({"summary": "x"}, "'summary' is not a section"),
        ({"license": "MIT License"}, "not an identifier"),
        ({"description": "x" * 100_001}, "more than 100000"),
        ({"description": 3}, "not text"),
        ("text", "must be a dict"),
    ):
        with pytest.raises(UsageError, match=message):
            store.upload("churn", files=[new_file(tmp_path, "c")], card=bad)


HOSTILE = (
    'x\n---\nlicense: "evil"\n# Owned\n<script>alert(1)</script> <img src=x onerror=alert(1)> [click](javascript:alert(1))'
    " ![i](http://evil/x.png) | a | b |\n| --- | --- |\n```\n&lt;b&gt; \\ *em* _u_ ~~s~~ `code` <!-- c --> \u2028 \x1b[31m"
)


def test_card_escapes_every_value_from_the_record(store: ModelStore, tmp_path):
    """A record written by someone else: hostile tag values, card text, param values and plugin
    metadata. The front matter reads back as exactly those values; the body renders to text only:
    no HTML, link, image, heading or table of the values' making."""
    v = store.upload("churn", files=[new_file(tmp_path, "a")], metrics={"auc": 0.5}, params={"lr": 0.1})

    def hostile(doc):
        doc["tags"] = {"team": HOSTILE, "owner": "--- \n..."}
        doc["params"] = {"lr": HOSTILE}
        doc["card"] = {"description": HOSTILE, "intended_use": HOSTILE, "license": "mit"}
        doc["runtime"] = {"python": HOSTILE, "platform": "x", "implementation": "CPython"}

    edit_record(store, "churn", v.version, hostile)
    text = ModelStore(store.url, cache_dir=tmp_path / "fresh").card("churn")
    meta = front_matter(text)
    assert set(meta) == {"license", "library_name", "tags", "model-index"}
    assert meta["license"] == "mit"
    assert meta["tags"] == ["modelstore", "files", "owner=--- \n...", f"team={HOSTILE}"]
    body = text[4:].partition("\n---\n")[2]
    html = MarkdownIt("commonmark").enable("table").enable("strikethrough").render(body)
    for made in ("<script", "<img", "<a ", "<code", "<em", "<s>", "<strong", "<!--", "<pre", "<b>"):
        assert made not in html, made
    headings = [line for line in html.splitlines() if line.startswith(("<h1", "<h2", "<h3"))]
    assert headings == [
        "<h1>churn version 1</h1>", "<h2>Intended use</h2>", "<h2>License</h2>", "<h2>Lineage</h2>", "<h2>Metrics</h2>",
        "<h2>Parameters</h2>", "<h2>Environment</h2>", "<h2>Files</h2>",
    ]  # fmt: skip
    assert html.count("<table>") == 4  # metrics, params, dependencies, files: none made by a value
    assert "\x1b" not in text and "\u2028" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown as text


# --- retention --------------------------------------------------------------------------------------


def uploads(store: ModelStore, tmp_path: Path, n: int, domain: str = "churn", **kw) -> list:
    return [store.upload(domain, files=[new_file(tmp_path, f"{domain}-{i}.bin", 1000 + i)], **kw) for i in range(n)]


def test_retain_keeps_the_last_states_and_parents(store: ModelStore, tmp_path):
    uploads(store, tmp_path, 8)
    store.upload("churn", files=[new_file(tmp_path, "child.bin")], parents=["churn:3"])  # version 9
    store.set_state("churn", 2, "production")
    plan = store.retain("churn", keep_last=3)
    assert plan.dry_run and plan.deleted == ["churn:6", "churn:5", "churn:4", "churn:1"]
    [d] = plan.domains
    assert d.kept == [9, 8, 7, 3, 2] and d.protected == {2: ["state production"], 3: ["a parent of a version kept"]}
    assert plan.bytes == sum(1000 + i for i in (0, 3, 4, 5))  # each deleted version's own file
    assert [v.version for v in store.list_versions("churn")] == list(range(9, 0, -1))  # a dry run deletes nothing
    done = store.retain("churn", keep_last=3, dry_run=False)
    assert done.deleted == plan.deleted and [v.version for v in store.list_versions("churn")] == [9, 8, 7, 3, 2]
    gone = [e for e in store.changes("churn") if e.event == "deleted"]
    assert sorted(e.version for e in gone) == [1, 4, 5, 6]
    unprotected = store.retain("churn", keep_last=1, keep_states=False)
    assert unprotected.deleted == ["churn:8", "churn:7", "churn:2"]  # 3 is 9's parent


def test_older_than_is_judged_by_the_store_s_timestamps(store: ModelStore, tmp_path):
    """Versions 1 to 4 committed 40 days ago by the store's clock; version 5's writer's clock said
    2001 (its record's `created`) but the store has it from now: it stays."""
    uploads(store, tmp_path, 6)
    old = time.time() - 40 * 86400
    for n in (1, 2, 3, 4):
        os.utime(store.storage.root / keys.version_key("churn", n), (old, old))
    edit_record(store, "churn", 5, lambda doc: doc.update(created="2001-01-01T00:00:00+00:00"))
    plan = store.retain("churn", keep_last=1, older_than=timedelta(days=30))
    assert plan.deleted == ["churn:4", "churn:3", "churn:2", "churn:1"]
    assert store.retain("churn", keep_last=1, older_than=50 * 86400).deleted == []
    assert store.retain("churn", keep_last=3).deleted == ["churn:3", "churn:2", "churn:1"]


def test_a_version_whose_age_the_store_does_not_give_is_kept(store: ModelStore, tmp_path):
    """A backend's listing may leave out modification times (``ObjectInfo.modified`` is optional):
    with ``older_than``, such a version is not taken as old."""
    uploads(store, tmp_path, 3)
    listed = store.storage.list
    store.storage.list = lambda *args, **kw: (ObjectInfo(info.key, info.size) for info in listed(*args, **kw))
    plan = store.retain("churn", keep_last=1, older_than=0)
    assert plan.deleted == [] and set(plan.domains[0].protected) == {1, 2}
    assert plan.domains[0].protected[1] == ["no modification time from the store"]
    assert store.retain("churn", keep_last=1).deleted == ["churn:2", "churn:1"]  # without an age, the policy goes by number


def test_signed_releases_can_be_protected(store: ModelStore, tmp_path):
    from test_signing import make_key

    uploads(store, tmp_path, 4)
    alice, bob = make_key(tmp_path, "alice"), make_key(tmp_path, "bob")
    store.sign("churn", 1, key=str(alice[0]))
    store.sign("churn", 2, key=str(bob[0]))
    assert store.retain("churn", keep_last=1).deleted == ["churn:3", "churn:2", "churn:1"]
    assert store.retain("churn", keep_last=1, keep_signed=True).deleted == ["churn:3"]
    under_policy = ModelStore(store.url, cache_dir=tmp_path / "c2", trusted_keys=[str(alice[1])])
    plan = under_policy.retain("churn", keep_last=1, keep_signed=True)
    assert plan.deleted == ["churn:3", "churn:2"] and plan.domains[0].protected == {1: ["signed"]}
    store.set_state("churn", 3, "staging")  # by an unsigned writer: no trusted key vouches for it
    assert "staging" not in under_policy.states("churn")
    plan = under_policy.retain("churn", keep_last=1, keep_signed=True)
    assert plan.deleted == ["churn:2"] and plan.domains[0].protected == {1: ["signed"], 3: ["state staging"]}  # it protects all the same


def test_a_stored_policy_is_applied_by_gc(store: ModelStore, tmp_path, fast_heartbeat):
    uploads(store, tmp_path, 5)
    uploads(store, tmp_path, 2, domain="fraud")
    assert store.retain("churn", keep_last=2, save=True).deleted == ["churn:3", "churn:2", "churn:1"]
    assert store.retention_policy("churn").keep_last == 2 and store.retention_policy("fraud") is None
    assert [v.version for v in store.list_versions("churn")] == [5, 4, 3, 2, 1]  # saved, not applied
    dry = store.gc(grace=minimum_grace(), dry_run=True)
    assert dry.retention.deleted == ["churn:3", "churn:2", "churn:1"] and not dry.empty
    assert [v.version for v in store.list_versions("churn")] == [5, 4, 3, 2, 1]
    time.sleep(minimum_grace() * 1.5 + 3)
    report = store.gc(grace=minimum_grace())
    assert report.retention.deleted == ["churn:3", "churn:2", "churn:1"]
    assert len(report.objects) == 3 and report.bytes == 1000 + 1001 + 1002
    assert [v.version for v in store.list_versions("churn")] == [5, 4] and len(store.list_versions("fraud")) == 2
    assert store.retain().deleted == [] and store.gc(retention=False).retention is None
    store.forget_retention_policy("churn")
    assert store.retention_policy("churn") is None and store.retain().domains == []


@pytest.mark.parametrize(
    "data,problem",
    [
        (b"not json", "is not valid JSON"),
        (b'{"schema": 1, "keep_last": 0}', "keep_last is 0"),
        (b'{"schema": 1, "keep_last": 2, "keep_all": true}', "keep_all is not a field"),
        (b'{"schema": 1, "keep_last": 2, "older_than": -5}', "older_than is -5"),
        (b'{"schema": 9, "keep_last": 2}', "upgrade modelstore-core"),
        (b'{"schema": 1, "keep_last": 2, "x": "' + b"y" * limits.SMALL_BYTES + b'"}', "byte limit"),
    ],
    ids=["json", "keep-none", "unknown", "negative", "newer", "oversized"],
)
def test_a_stored_policy_that_is_not_valid_deletes_nothing(store: ModelStore, tmp_path, data, problem):
    uploads(store, tmp_path, 3)
    put(store, keys.retention_key("churn"), data)
    report = store.retain(dry_run=False)
    assert report.deleted == [] and len(report.problems) == 1 and problem in report.problems[0], report.problems
    assert report.problems[0].startswith("churn: left alone")
    assert len(store.list_versions("churn")) == 3
    assert store.gc(dry_run=True).retention.problems == report.problems


def test_retain_arguments_are_checked(store: ModelStore, tmp_path):
    uploads(store, tmp_path, 2)
    for kwargs, message in (
        ({"keep_last": 0}, "at least 1"),
        ({"keep_last": True}, "at least 1"),
        ({"keep_last": 2, "older_than": -1}, "older_than"),
        ({"keep_last": 2, "older_than": "30d"}, "older_than"),
        ({"keep_last": 2, "save": True}, "name it"),
        ({"older_than": 5}, "needs keep_last"),
        ({"keep_last": 2, "keep_states": "yes"}, "keep_states"),
    ):
        with pytest.raises(UsageError, match=message):
            store.retain(**kwargs)
    from modelstore_core.retention import parse_duration

    assert parse_duration("30d") == timedelta(days=30) and parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("2w") == timedelta(weeks=2) and parse_duration("15") == timedelta(seconds=15)
    with pytest.raises(UsageError, match="not a duration"):
        parse_duration("a month")


# --- the feed's other events --------------------------------------------------------------------


def test_copies_signatures_and_domain_deletes_are_events(store: ModelStore, model, tmp_path):
    from test_signing import make_key

    store.upload("churn", files=[model])
    store.set_state("churn", 1, "production")
    alice = make_key(tmp_path, "alice")
    store.sign("churn", 1, key=str(alice[0]))
    assert [(e.event, e.version) for e in store.changes()] == [("uploaded", 1), ("state_set", 1), ("signed", 1)]
    other = ModelStore(tmp_path / "other", cache_dir=tmp_path / "other-cache")
    store.copy_to(other)
    store.copy_to(other)  # nothing new: no event
    assert [(e.event, e.domain, e.version, e.state) for e in other.changes()] == [
        ("copied", "churn", 1, None),
        ("state_set", "churn", 1, "production"),
    ]
    other.delete_domain("churn")
    assert [(e.event, e.version) for e in other.changes(since=2)] == [("deleted", None)]  # its states with it


def test_an_event_that_cannot_be_read_is_passed_and_the_feed_goes_on(store: ModelStore, model):
    store.upload("churn", files=[model])
    put(store, keys.event_key(2), b'{"schema": 1, "seq": 2, "event": "hacked"}')
    store.upload("churn", files=[model])  # its event passes the unreadable slot
    problems: list[str] = []
    events = list(store.changes(problems=problems))
    assert [(e.seq, e.event, e.version) for e in events] == [(1, "uploaded", 1), (3, "uploaded", 2)]
    assert len(problems) == 1 and "event is 'hacked'" in problems[0] and "(passed)" in problems[0]
    with pytest.warns(RuntimeWarning, match="hacked"):
        assert len(list(store.changes())) == 2
    with pytest.raises(UsageError, match="event number"):
        list(store.changes(since=-1))
    feed_head = json.loads(store.storage.read(keys.latest_key("churn"))[0])["feed"]
    assert feed_head == {"seq": 3, "settled": 2}


# --- the README's serving process ------------------------------------------------------------------

#: Runs the README's example in a child: ``store`` is the test's store and ``time.sleep`` reports
#: which model the loop holds (a raw-files version loads as its paths), ending the loop once it
#: holds version 2's.
SERVING = """
import json, sys, time as _time
from pathlib import Path
from modelstore_core import ModelStore

store = ModelStore(sys.argv[1], cache_dir=sys.argv[2])
report = Path(sys.argv[3])


class _Clock:
    def sleep(self, seconds):
        held = [Path(p).read_text() for p in model]
        report.write_text(json.dumps(held))
        if held == ["two"]:
            sys.exit(0)
        _time.sleep(0.05)


time = _Clock()
"""


def readme_serving_example() -> str:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = [block.partition("\n")[2] for block in text.split("```python")[1:]]
    [example] = [block.partition("```")[0] for block in blocks if "store.changes(" in block]
    return example


def test_the_readme_s_serving_process_reloads_when_production_moves(store: ModelStore, tmp_path):
    one, two = tmp_path / "one.txt", tmp_path / "two.txt"
    one.write_text("one")
    two.write_text("two")
    store.upload("churn", files=[one])
    store.upload("churn", files=[two])
    store.set_state("churn", 1, "production")
    report = tmp_path / "report.json"
    child = subprocess.Popen(
        [sys.executable, "-c", SERVING + readme_serving_example(), store.url, str(tmp_path / "cache"), str(report)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while not (report.exists() and report.read_text() == '["one"]'):  # it serves version 1, the feed read to its end
            assert child.poll() is None, child.communicate()
            time.sleep(0.05)
        store.set_state("churn", 2, "staging")
        store.upload("churn", files=[one])
        store.set_state("churn", 2, "production")
        out, err = child.communicate(timeout=HANG_TIMEOUT)
    finally:
        child.kill()
    assert child.returncode == 0, err
    assert json.loads(report.read_text()) == ["two"]
