"""``find``: filters and sorts over real uploads, and a summary that lags, is damaged or is forged
never changes what it returns (the records are the truth)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone

import pytest

from modelstore_core import ModelStore
from modelstore_core.errors import DomainNotFoundError, UsageError
from modelstore_core.protocol import keys
from modelstore_core.protocol.summary import parse_segment, segment_document
from modelstore_core.testing.faults import HANG_TIMEOUT
from modelstore_core.testing.history import commit_copies

#: (tags, metrics, params) of versions 1 to 6 of "churn"
CHURN = [
    ({"team": "risk"}, {"auc": 0.91, "rmse": 3.2}, {"lr": 0.1, "solver": "adam"}),
    ({"team": "ops"}, {"auc": 0.95}, {"lr": 0.01, "solver": "sgd"}),
    ({"team": "risk"}, {"auc": 0.87, "rmse": 2.9}, {"lr": 0.3}),
    ({}, {}, {}),
    ({"team": "risk", "stage": 2}, {"auc": 0.93}, {"lr": 0.05, "early_stop": True}),
    ({"team": "risk"}, {"auc": 0.99}, {"lr": 1}),
]


@pytest.fixture
def store(tmp_path) -> ModelStore:
    s = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache")
    yield s
    s.close()


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(os.urandom(3000))
    return path


@pytest.fixture
def churn(store, model_file, tmp_path, monkeypatch):
    """Six uploads of "churn" (CHURN), two of "fraud", outside any git repository; version 5 of
    churn in production."""
    monkeypatch.chdir(tmp_path)
    for tags, metrics, params in CHURN:
        store.upload("churn", files=[model_file], tags=tags, metrics=metrics, params=params)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9000))
    store.upload("fraud", files=[model_file], tags={"team": "risk"}, metrics={"auc": 0.97})
    store.upload("fraud", files=[model_file, big], metrics={"auc": 0.5})
    store.set_state("churn", 5, "production")
    store.set_state("fraud", 1, "production")
    return store


def found(store, domain=None, where=None, sort=None, limit=None, problems=None) -> list[tuple[str, int]]:
    return [(v.domain, v.version) for v in store.find(domain, where, sort, limit, problems=problems if problems is not None else [])]


def numbers(store, *args, **kwargs) -> list[int]:
    return [n for _, n in found(store, *args, **kwargs)]


def segment(store, domain: str, first: int = 1) -> dict:
    key = keys.summary_key(domain, first)
    return parse_segment(store.storage.read(key)[0], key, domain, first)


def oracle(store, domain, keep) -> list[int]:
    """What a filter must return, computed from every record (newest first)."""
    return [v.version for v in store.list_versions(domain) if keep(v)]


# --- filters and sorts -----------------------------------------------------------------------


def test_filters_match_what_the_records_say(churn):
    store = churn
    cases = {
        "metrics.auc>0.9": lambda v: v.metrics.get("auc", 0) > 0.9,
        "metrics.auc>=0.93": lambda v: v.metrics.get("auc", 0) >= 0.93,
        "metrics.rmse<3": lambda v: "rmse" in v.metrics and v.metrics["rmse"] < 3,
        "tags.team=risk": lambda v: v.tags.get("team") == "risk",
        "tags.team!=risk": lambda v: "team" in v.tags and v.tags["team"] != "risk",
        "tags.stage=2": lambda v: v.tags.get("stage") == 2,
        "params.lr<=0.1": lambda v: isinstance(v.params.get("lr"), (int, float)) and v.params["lr"] <= 0.1,
        "params.solver=adam": lambda v: v.params.get("solver") == "adam",
        "params.solver~g": lambda v: "g" in str(v.params.get("solver", "")),
        "params.early_stop=true": lambda v: v.params.get("early_stop") is True,
        "flavor=files": lambda v: v.flavor.name == "files",
        "version>=4": lambda v: v.version >= 4,
        "size>3000": lambda v: v.size > 3000,
    }
    for expression, keep in cases.items():
        expected = oracle(store, "churn", keep)
        assert numbers(store, "churn", expression) == expected, expression
    assert numbers(store, "churn", "metrics.auc>0.9") == [6, 5, 2, 1]  # and the oracle is not vacuous
    assert numbers(store, "churn", ["metrics.auc>0.9", "tags.team=risk", "params.lr<=0.1"]) == [5, 1]
    assert numbers(store, "churn", "state=production") == [5]
    assert numbers(store, "churn", "state!=production") == [6, 4, 3, 2, 1]
    assert numbers(store, "churn", "tags.nope=1") == [] and numbers(store, "churn", "tags.nope!=1") == []  # missing never matches


def test_created_and_git_commit(churn, model_file, tmp_path, monkeypatch):
    store = churn
    before = datetime.now(timezone.utc)
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()
    monkeypatch.chdir(repo)
    store.upload("churn", files=[model_file], metrics={"auc": 0.5})
    assert numbers(store, "churn", f"created>{before.isoformat()}") == [7]
    assert numbers(store, "churn", f"created<={before.isoformat()}") == [6, 5, 4, 3, 2, 1]
    # A date filter matches by the day of each record's own time (a run may straddle midnight).
    days = {v.version: v.created.date() for v in store.list_versions("churn")}
    today = days[7]
    assert numbers(store, "churn", f"created={today}") == [n for n in range(7, 0, -1) if days[n] == today]
    assert numbers(store, "churn", f"created>{today}") == []
    assert numbers(store, "churn", f"created<{today}") == [n for n in range(7, 0, -1) if days[n] < today]
    assert numbers(store, "churn", f"created<{today + timedelta(days=1)}") == [7, 6, 5, 4, 3, 2, 1]
    assert numbers(store, "churn", f"git.commit={commit[:7]}") == [7]  # a prefix
    assert numbers(store, "churn", f"git.commit={commit.upper()}") == [7]
    assert numbers(store, "churn", "git.dirty=false") == [7]


def test_sorts_put_missing_values_last_either_way(churn):
    store = churn
    assert numbers(store, "churn", sort="-metrics.auc") == [6, 2, 5, 1, 3, 4]
    assert numbers(store, "churn", sort="metrics.auc") == [3, 1, 5, 2, 6, 4]
    assert numbers(store, "churn", sort="metrics.rmse") == [3, 1, 6, 5, 4, 2]  # the rest: newest first
    assert numbers(store, "churn", sort=["tags.team", "-metrics.auc"]) == [2, 6, 5, 1, 3, 4]
    assert numbers(store, "churn", sort="created") == [1, 2, 3, 4, 5, 6]
    assert numbers(store, "churn", sort="-created", limit=2) == [6, 5]
    assert numbers(store, "churn", "tags.team=risk", "-metrics.auc", 1) == [6]


@pytest.mark.parametrize("flat", [True, False], ids=["one-listing", "domain-by-domain"])
def test_across_domains(churn, flat, monkeypatch):
    """A small store is listed at once; a bigger one (here: more than one key) domain by domain."""
    import modelstore_core.search

    if not flat:
        monkeypatch.setattr(modelstore_core.search, "FLAT_LISTING_KEYS", 1)
    store = churn
    put(store, "domains/not a domain!/versions/0000000001.json", b"{}")  # a stray: never read
    assert found(store, where="metrics.auc>0.9", sort="-metrics.auc") == [
        ("churn", 6), ("fraud", 1), ("churn", 2), ("churn", 5), ("churn", 1)
    ]  # fmt: skip
    assert found(store, where="state=production") == [("churn", 5), ("fraud", 1)]
    assert found(store, sort="-size", limit=1) == [("fraud", 2)]
    [best] = store.find(where="tags.team=risk", sort="-metrics.auc", limit=1)
    assert best.summary.metrics == {"auc": 0.99} and best.metrics == {"auc": 0.99}  # summary, then the record


def test_bad_expressions_are_usage_errors_naming_the_problem(churn):
    cases = {
        "metric.auc>1": "unknown field 'metric.auc'",
        "auc>1": "fields are version, created",
        "metrics.auc~9": "metrics.auc takes the operators = != > >= < <=, not ~",
        "metrics.auc>high": "'high' is not one",
        "state>2": "state takes the operators = != ~",
        "created>last week": "is not a date or time",
        "git.dirty=maybe": "is true or false",
        "metrics.auc": "is not a filter: write FIELD OPERATOR VALUE",
        "tags.team=": "no value after =",
        "tags.-x=1": "invalid tag name",
    }
    for expression, message in cases.items():
        with pytest.raises(UsageError, match=".*".join(map(__import__("re").escape, message.split("*")))):
            churn.find("churn", expression)
    with pytest.raises(UsageError, match="cannot be sorted by state"):
        churn.find("churn", sort="state")
    with pytest.raises(UsageError, match="unknown field 'nope'"):
        churn.find("churn", sort="-nope")
    with pytest.raises(UsageError, match="limit must be a positive integer"):
        churn.find("churn", limit=0)
    with pytest.raises(DomainNotFoundError):
        churn.find("nope")


# --- the summary: kept by writers, checked by readers ------------------------------------------


def test_uploads_and_deletes_keep_the_summary(churn):
    store = churn
    assert sorted(segment(store, "churn")) == [1, 2, 3, 4, 5, 6]
    store.delete("churn", 3)
    assert sorted(segment(store, "churn")) == [1, 2, 4, 5, 6]
    assert numbers(store, "churn", "tags.team=risk") == [6, 5, 1]
    assert store.verify().ok and store.gc().empty  # a core key: neither a stray nor garbage
    store.delete_domain("fraud")
    assert list(store.storage.list(keys.summary_prefix("fraud"))) == []


def test_a_record_committed_without_its_summary_entry_is_found(churn, tmp_path):
    """The summary lags: records committed by the protocol alone (as a crash after the commit point leaves them)."""
    store = churn
    record = store.info("churn", 1).metadata
    commit_copies(store, "churn", record, range(7, 10))
    assert sorted(segment(store, "churn")) == [1, 2, 3, 4, 5, 6]
    problems: list[str] = []
    assert numbers(store, "churn", "metrics.auc>0.9", problems=problems) == [9, 8, 7, 6, 5, 2, 1]
    assert problems == []  # lagging is normal, not a problem
    assert sorted(segment(store, "churn")) == list(range(1, 10))  # repaired by the query


def test_an_upload_killed_after_its_commit_point_is_found(churn, model_file):
    """A real process killed between its record and its summary entry."""
    worker = [sys.executable, "-m", "modelstore_core.testing.worker", str(churn.storage.root), "churn", str(model_file)]
    run = subprocess.run([*worker, "--crash-at", "committed"], capture_output=True, text=True, timeout=HANG_TIMEOUT)
    assert run.returncode == -9, run.stderr
    assert [v.version for v in churn.list_versions("churn")][0] == 7
    assert 7 not in segment(churn, "churn")
    assert numbers(churn, "churn", "flavor=files", limit=2) == [7, 6]
    assert 7 in segment(churn, "churn")


def forge(store, domain: str, change) -> None:
    """Rewrite a segment's entries with ``change(entries as JSON)``, checksum recomputed (a careful forger)."""
    key = keys.summary_key(domain, 1)
    head, _, body = store.storage.read(key)[0].partition(b"\n")
    header, entries = json.loads(head), json.loads(body)
    change(entries)
    body = json.dumps(entries).encode()
    header["sha256"] = hashlib.sha256(body).hexdigest()
    put(store, key, json.dumps(header).encode() + b"\n" + body)


def put(store, key: str, data: bytes) -> None:
    store.storage.put(key, __import__("io").BytesIO(data))


@pytest.mark.parametrize(
    "damage",
    [
        "junk",
        "edited value",
        "wrong domain",
        "wrong segment",
        "invalid metric",
        "duplicate entry",
        "newer schema",
        "forged with its record size",
    ],
)
def test_a_damaged_summary_gives_the_records_answer_and_is_rebuilt(churn, damage):
    store = churn
    expected = numbers(store, "churn", "metrics.auc>0.9", "-metrics.auc")
    assert expected == [6, 2, 5, 1]
    key = keys.summary_key("churn", 1)
    good = store.storage.read(key)[0]
    if damage == "junk":
        put(store, key, b"\x00\xff{not json")
    elif damage == "edited value":  # by hand: the checksum no longer matches
        put(store, key, good.replace(b'"auc":0.87', b'"auc":0.97'))
    elif damage == "wrong domain":
        put(store, key, segment_document("fraud", 1, segment(store, "churn")))
    elif damage == "wrong segment":
        put(store, key, good.replace(b'"first":1', b'"first":1001'))
    elif damage == "invalid metric":
        forge(store, "churn", lambda entries: entries[2]["metrics"].update(auc="high"))
    elif damage == "duplicate entry":
        forge(store, "churn", lambda entries: entries.append(entries[0]))
    elif damage == "newer schema":
        put(store, key, good.replace(b'"schema":1', b'"schema":2'))
    else:  # a forger who recomputes the checksum, but whose entry no longer fits its record's size
        forge(store, "churn", lambda entries: entries[2]["metrics"].update(auc=0.999) or entries[2].update(record_bytes=1))
    problems: list[str] = []
    assert numbers(store, "churn", "metrics.auc>0.9", "-metrics.auc", problems=problems) == expected
    assert len(problems) == 1 and key in problems[0] and "rebuilt" in problems[0], problems
    assert store.storage.read(key)[0] == good  # rebuilt as the writers wrote it
    with pytest.warns(RuntimeWarning, match="rebuilt"):  # without problems=, each is a warning
        put(store, key, b"[]")
        store.find("churn")


def test_entries_of_deleted_or_changed_versions_are_not_used(churn):
    store = churn
    # A delete that lost its summary update: the entry outlives the record.
    store.storage.delete(keys.version_key("churn", 6))
    assert 6 in segment(store, "churn")
    assert numbers(store, "churn", "metrics.auc>0.9") == [5, 2, 1]
    assert numbers(store, "churn", "metrics.auc>0.9", "-metrics.auc") == [2, 5, 1]
    # A record rewritten under the summary (another tool; its size changes): the record wins.
    key = keys.version_key("churn", 3)
    doc = json.loads(store.storage.read(key)[0])
    doc["metrics"]["auc"] = 0.98
    put(store, key, json.dumps(doc).encode())
    problems: list[str] = []
    assert numbers(store, "churn", "metrics.auc>0.9", "-metrics.auc", problems=problems) == [3, 2, 5, 1]
    assert "does not match its version record" in problems[0]
    assert segment(store, "churn")[3].metrics == {"auc": 0.98, "rmse": 2.9}
    assert 6 not in segment(store, "churn")  # the rebuild dropped it


def test_a_corrupt_record_is_left_out_and_named(churn):
    store = churn
    key = keys.version_key("churn", 2)
    put(store, key, b'{"truncated": ')
    problems: list[str] = []
    assert numbers(store, "churn", "metrics.auc>0.9", problems=problems) == [6, 5, 1]
    assert problems and "skipped" in problems[0] and "0000000002.json" in problems[0]


def test_concurrent_uploads_keep_the_summary_complete(store, model_file):
    errors: list[BaseException] = []

    def uploader(i: int) -> None:
        try:
            for j in range(4):
                store.upload("busy", files=[model_file], metrics={"auc": i + j / 10})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=uploader, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(segment(store, "busy")) == list(range(1, 25))  # every writer's entry, none lost
    assert len(store.find("busy", "metrics.auc>=5")) == 4


def test_segments_split_at_a_thousand_versions(store, model_file):
    record = store.upload("wide", files=[model_file], metrics={"auc": 0.5}).metadata
    commit_copies(store, "wide", record, range(998, 1003))
    store.upload("wide", files=[model_file], metrics={"auc": 0.9})
    assert numbers(store, "wide", "metrics.auc>0.8") == [1003]
    assert sorted(segment(store, "wide", 1)) == [1, 998, 999, 1000]
    assert sorted(segment(store, "wide", 1001)) == [1001, 1002, 1003]
    # Without filters or sort, a limit needs only the newest versions: the segment of the others is not read.
    put(store, keys.summary_key("wide", 1), b"junk")
    problems: list[str] = []
    assert numbers(store, "wide", limit=2, problems=problems) == [1003, 1002] and problems == []
    assert numbers(store, "wide", "flavor=files", limit=2, problems=problems) == [1003, 1002] and len(problems) == 1


def test_verify_finds_a_forged_summary_that_find_would_trust_and_repair_rebuilds_it(churn):
    """A forger who keeps the checksum and the record sizes right fools ``find`` (as one who rewrites
    records would); ``verify`` reads every record anyway and compares."""
    store = churn
    key = keys.summary_key("churn", 1)
    good = store.storage.read(key)[0]
    forge(store, "churn", lambda entries: entries[2]["metrics"].update(auc=0.999))  # version 3
    assert 3 in numbers(store, "churn", "metrics.auc>0.99")  # find trusts what it cannot tell from a record
    report = store.verify()
    assert [(p.domain, p.version, p.problem, p.repaired) for p in report.problems] == [("churn", 3, "bad-summary", "")]
    assert "does not match its record" in report.problems[0].detail
    put(store, keys.summary_key("churn", 1001), b"junk")  # a segment of no version, unreadable
    repaired = store.verify(repair=True)
    assert [(p.version, p.repaired) for p in repaired.problems] == [(3, "rebuilt from the records"), (None, "rebuilt from the records")]
    assert store.storage.read(key)[0] == good and store.storage.stat(keys.summary_key("churn", 1001)) is None
    assert store.verify().ok and numbers(store, "churn", "metrics.auc>0.99") == []


def test_newest_n_lists_only_the_newest_and_keeps_the_older_entries(store, tmp_path, monkeypatch):
    """`ls DOMAIN -n N` (a limit, no filter or sort: ``from_latest``) pages from the latest hint
    instead of listing the domain, and a listing that covers only the newest versions drops no
    older entry."""
    from modelstore_core.search import Query, search
    from modelstore_core.testing.history import build_history

    def newest(n: int) -> list[int]:
        return [hit.version for hit in search(store.storage, "d", Query.parse((), (), n), from_latest=True)]

    build_history(store, "d", 30, tmp_path)
    assert numbers(store, "d") == list(range(30, 0, -1))  # a full query writes the summary
    before = store.storage.read(keys.summary_key("d", 1))[0]
    listed = []
    real = type(store.storage).list
    monkeypatch.setattr(type(store.storage), "list", lambda self, prefix, **kw: listed.append(prefix) or real(self, prefix, **kw))
    assert newest(5) == [30, 29, 28, 27, 26]
    assert listed == []  # the local backend pages from the hint by stat
    assert store.storage.read(keys.summary_key("d", 1))[0] == before
    store.delete("d", 28)
    assert newest(5) == [30, 29, 27, 26, 25]
    assert sorted(segment(store, "d")) == [n for n in range(1, 31) if n != 28]  # only the deleted one dropped
    assert numbers(store, "d", limit=5) == [30, 29, 27, 26, 25]  # find itself: one listing, same answer
    monkeypatch.undo()
    assert numbers(store, "d") == [n for n in range(30, 0, -1) if n != 28]
