"""``modelstore ls DOMAIN --where ... --sort ...``: the command over ``find``."""

from __future__ import annotations

import json

from modelstore_core import ModelStore


def seed(cli, files) -> None:
    store = ModelStore(cli.root)
    for team, auc, lr in (("risk", 0.91, 0.1), ("ops", 0.95, 0.01), ("risk", 0.87, 0.3), ("risk", 0.97, 0.05)):
        store.upload("churn", files=[files["model.bin"]], tags={"team": team}, metrics={"auc": auc}, params={"lr": lr})
    store.upload("fraud", files=[files["notes.txt"]], tags={"team": "risk"}, metrics={"auc": 0.99})
    store.upload("fraud", files=[files["notes.txt"]])
    store.set_state("churn", 1, "production")
    store.close()


def test_ls_where_and_sort(cli, files):
    seed(cli, files)
    rows = json.loads(
        cli("ls", "churn", "--where", "metrics.auc>0.9", "--where", "tags.team=risk", "--sort", "-metrics.auc", "--json").stdout
    )
    assert [(r["domain"], r["version"], r["metrics"], r["states"]) for r in rows] == [
        ("churn", 4, {"auc": 0.97}, []),
        ("churn", 1, {"auc": 0.91}, ["production"]),
    ]
    assert rows[0]["params"] == {"lr": 0.05} and rows[0]["tags"] == {"team": "risk"} and rows[0]["signatures"] == []

    plain = cli("ls", "churn", "--where", "params.lr<=0.1", "--sort", "metrics.auc", "-n", "2")
    assert plain.returncode == 0, plain.stderr
    assert [(r[0], r[8], r[9]) for r in plain.lines] == [("1", "auc=0.91", "lr=0.1"), ("2", "auc=0.95", "lr=0.01")]
    assert [r[0] for r in cli("ls", "churn", "--where", "state=production").lines] == ["1"]


def test_ls_across_domains(cli, files):
    seed(cli, files)
    plain = cli("ls", "--where", "tags.team=risk", "--sort", "-metrics.auc")
    assert [(r[0], r[1]) for r in plain.lines] == [("fraud", "1"), ("churn", "4"), ("churn", "1"), ("churn", "3")]
    # No filter and no sort: the domains, as before.
    assert [r[0] for r in cli("ls").lines] == ["churn", "fraud"]
    rows = json.loads(cli("ls", "--sort", "-metrics.auc", "-n", "1", "--json").stdout)
    assert [(r["domain"], r["version"]) for r in rows] == [("fraud", 1)]
    shown = cli.tty("ls", "--where", "metrics.auc>0.96")  # a table on a terminal, with a domain column
    assert "fraud" in shown.stdout and "churn" in shown.stdout and "auc=0.97" in shown.stdout


def test_ls_bad_expression_is_one_line_naming_the_field(cli, files):
    seed(cli, files)
    bad = cli("ls", "churn", "--where", "metric.auc>0.9")
    assert bad.returncode != 0 and bad.stdout == ""
    assert "unknown field 'metric.auc'" in bad.stderr and "metrics.NAME" in bad.stderr and "Traceback" not in bad.stderr
    nothing = cli.tty("ls", "churn", "--where", "metrics.auc>2")
    assert nothing.returncode == 0 and "No version of churn matches metrics.auc>2" in nothing.stdout


def test_ls_notes_a_damaged_summary_and_lists_the_records_truth(cli, files):
    seed(cli, files)
    store = ModelStore(cli.root)
    from modelstore_core.protocol import keys

    store.storage.put(keys.summary_key("churn", 1), __import__("io").BytesIO(b"{junk"))
    listed = cli("ls", "churn", "--where", "tags.team=risk")
    assert [r[0] for r in listed.lines] == ["4", "3", "1"]
    assert "summary/0000000001.json" in listed.stderr and "rebuilt" in listed.stderr
    assert cli("ls", "churn", "--where", "tags.team=risk").stderr == ""  # rebuilt by the first
