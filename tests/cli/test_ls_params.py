"""``modelstore ls DOMAIN`` on a terminal: the params that differ between the versions listed, within
the terminal's width (the walkthrough filters on them: ``ls churn --where "params.C<1"``)."""

from __future__ import annotations

import pytest
from cli_helpers import Result

from modelstore_core import ModelStore

C = [0.001, 0.01, 0.1, 1.0]


@pytest.fixture
def churn(cli, files, monkeypatch) -> None:
    monkeypatch.chdir(cli.tmp)  # outside a git working tree: the table's width does not depend on where the tests run
    store = ModelStore(cli.root, cache_dir=cli.tmp / "api-cache")
    for i, c in enumerate(C):
        params = {"C": c, "penalty": "l2", "max_iter": 100 * (1 + i % 2), "solver": "lbfgs"}
        store.upload("churn", files=[files["model.bin"]], params=params, metrics={"auc": 0.8 + i / 37}, tags={"team": "risk"})


def table(result: Result) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of the versions table a terminal showed."""
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("┃"))
    rows = [[cell.strip() for cell in line.strip("│").split("│")] for line in lines if line.startswith("│")]
    return [h.strip() for h in header.strip("┃").split("┃")], rows


def test_ls_shows_the_params_that_differ_between_versions(cli, churn):
    for columns in (250, 160):
        shown = cli.tty("ls", "churn", columns=columns)
        assert shown.returncode == 0, shown.stdout
        header, rows = table(shown)
        assert header[-1] == "params"  # only those that differ: penalty and solver are the same in every version
        assert [row[-1] for row in rows] == [f"C={c:g}, max_iter={100 * (1 + i % 2)}" for i, c in reversed(list(enumerate(C)))]
        assert max(len(line) for line in shown.stdout.splitlines()) <= columns


def test_ls_shows_as_many_params_as_the_terminal_has_room_for(cli, churn):
    narrow = cli.tty("ls", "churn", columns=110)
    header, rows = table(narrow)
    assert header[-1] == "params" and [row[-1] for row in rows] == [f"C={c:g}" for c in reversed(C)]
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 110
    assert "1 param that differs between these versions not shown at this width: max_iter" in narrow.stdout

    tiny = cli.tty("ls", "churn", columns=80)
    assert "params" not in table(tiny)[0] and max(len(line) for line in tiny.stdout.splitlines()) <= 80
    assert "2 params that differ" in tiny.stdout


def test_one_version_has_no_params_column(cli, files):
    ModelStore(cli.root).upload("churn", files=[files["model.bin"]], params={"C": 1.0})
    assert "params" not in table(cli.tty("ls", "churn"))[0]
