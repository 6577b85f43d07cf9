"""The web view in a real headless Chromium (Debian's), against a real store of scikit-learn models
served by uvicorn: pages render, links lead where they say, the plot draws, filters filter,
hostile values stay text, downloads are the verified bytes."""

from __future__ import annotations

import hashlib
import re

import pytest
from web_helpers import HOSTILE, HOSTILE_PARAM


def rows(page, table: str) -> list[list[str]]:
    """The text of each cell of each body row of ``table`` (a CSS selector)."""
    return page.eval_on_selector_all(f"{table} tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))")


def follow(page, selector: str) -> None:
    """Click what ``selector`` names and wait until the page it leads to has loaded."""
    with page.expect_navigation():
        page.click(selector)


def column(page, table: str, name: str) -> list[str]:
    headers = page.eval_on_selector_all(f"{table} thead th", "cells => cells.map(c => c.innerText.trim())")
    i = headers.index(name)
    return [r[i] for r in rows(page, table)]


def test_domains_page_links_to_each_domain_and_its_latest_version(page, server, demo, screenshots):
    page.goto(server.url + "/")
    assert page.title() == "domains · modelstore"
    assert column(page, "#domains", "domain") == ["churn", "docs", "fraud"]
    assert column(page, "#domains", "latest") == ["5", "1", "1"]
    states = page.inner_text("#domains tbody tr:first-child td:last-child")
    assert "production → 3" in states and "staging → 5" in states
    page.screenshot(path=screenshots / "domains.png", full_page=True)

    follow(page, "#domains a:text-is('churn')")
    assert page.url == server.url + "/d/churn"
    assert page.inner_text("h1").startswith("churn")
    page.go_back()
    follow(page, "#domains tbody tr:first-child td:nth-child(2) a")  # the latest version
    assert page.url == server.url + "/d/churn/v/5"


def test_versions_page_shows_every_version_newest_first(page, server, demo, screenshots):
    page.goto(server.url + "/d/churn")
    assert column(page, "#versions", "version") == ["5", "4", "3", "2", "1"]
    assert column(page, "#versions", "states") == ["staging", "", "production", "", ""]
    assert column(page, "#versions", "flavor") == ["sklearn skops"] * 5
    # the metrics as recorded: the held-out AUC computed when the models were trained
    shown = [float(x) for x in column(page, "#versions", "auc")]
    assert shown == pytest.approx([demo.auc[n] for n in (5, 4, 3, 2, 1)], rel=1e-5)
    commit = demo.store.info("churn", 5).metadata["git"]["commit"]
    assert column(page, "#versions", "git")[0].startswith(commit[:10])
    page.screenshot(path=screenshots / "versions.png", full_page=True)

    follow(page, "#versions a:text-is('3')")
    assert page.url == server.url + "/d/churn/v/3"


def test_version_page_shows_the_record(page, server, demo, screenshots):
    v = demo.store.info("churn", 2)
    page.goto(server.url + "/d/churn/v/2")
    assert page.inner_text("h1") == "churn version 2"
    files = rows(page, "#files")
    assert [(r[0], r[2]) for r in files] == [(f.path, f.sha256) for f in v.files]
    assert "sklearn.linear_model._logistic.LogisticRegression" in page.inner_text("#summary")
    deps = page.inner_text("table.kv:has(caption:text-is('dependencies'))")
    assert f"scikit-learn\t{v.metadata['dependencies']['scikit-learn']}" in deps
    signature = page.inner_text("#signature")
    for column_name in v.signature["inputs"]:
        assert column_name["name"] in signature
    assert "python" in page.inner_text("table.kv:has(caption:text-matches('environment'))")
    requirements = page.inner_text("#requirements")
    assert f"scikit-learn=={v.metadata['dependencies']['scikit-learn']}" in requirements
    assert [(r[0], r[3]) for r in rows(page, "#data")] == [(name, d["sha256"]) for name, d in v.data.items()]
    page.screenshot(path=screenshots / "version.png", full_page=True)


def test_hostile_values_are_text_and_run_nothing(page, server):
    response = page.goto(server.url + "/d/churn/v/2")
    assert "script-src" not in response.headers["content-security-policy"]  # default-src 'none': no script at all
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert HOSTILE in page.inner_text("#tags")  # shown as it is, as text
    assert HOSTILE_PARAM in page.inner_text("table.kv:has(caption:text-is('params'))")
    assert page.evaluate("document.scripts.length") == 0
    assert page.evaluate("document.images.length") == 0  # the param's <img> is text, not an element
    assert page.evaluate("typeof window.pwned") == "undefined"
    page.goto(server.url + "/d/churn")
    assert HOSTILE in page.inner_text("#versions")
    assert page.evaluate("document.scripts.length") == 0 and page.evaluate("typeof window.pwned") == "undefined"


def test_filters_and_sort_from_the_form(page, server, demo):
    page.goto(server.url + "/d/churn")
    threshold = sorted(demo.auc.values())[2]  # the two best are above it
    page.fill("input[name=where][aria-label='new filter']", f"metrics.auc>{threshold}")
    page.fill("input[name=sort]", "metrics.auc")
    follow(page, "button:text('apply')")
    expected = sorted((n for n, auc in demo.auc.items() if auc > threshold), key=lambda n: demo.auc[n])
    assert column(page, "#versions", "version") == [str(n) for n in expected]
    assert "where=metrics.auc" in page.url and "sort=metrics.auc" in page.url

    # a second filter, added to the first
    page.fill("input[name=where][aria-label='new filter']", "tags.team=risk")
    follow(page, "button:text('apply')")
    both = [n for n in expected if demo.team[n] == "risk"]
    assert column(page, "#versions", "version") == [str(n) for n in both]
    assert page.input_value("input[name=where][aria-label=filter] >> nth=0") == f"metrics.auc>{threshold}"

    page.goto(server.url + "/d/churn?where=state%3Dproduction")
    assert column(page, "#versions", "version") == ["3"]

    # a bad expression is a 400 page that says what is wrong
    response = page.goto(server.url + "/d/churn?where=bogus%3E1")
    assert response.status == 400
    assert "unknown field 'bogus'" in page.inner_text("#error")


def test_compare_selected_versions(page, server, demo, screenshots):
    page.goto(server.url + "/d/churn")
    page.check("input[name=v][value='2']")
    page.check("input[name=v][value='5']")
    follow(page, "button:text('compare selected')")
    assert re.search(r"/d/churn/compare\?v=5&v=2$", page.url), page.url
    headers = page.eval_on_selector_all("#compare thead th", "cells => cells.map(c => c.innerText.trim())")
    assert headers == ["", "v5", "v2"]
    # the metrics rows: each version's value, the best one marked (higher AUC, lower log loss)
    auc = page.eval_on_selector_all("#compare tr[data-key=auc] td", "cells => cells.map(c => [c.innerText.trim(), c.className])")
    best = max((5, 2), key=demo.auc.get)
    for (text, cls), n in zip(auc, (5, 2), strict=True):
        assert text.rstrip(" ★") == f"{demo.auc[n]:.6g}"
        assert ("best" in cls) == (n == best) and text.endswith("★") == (n == best)
    assert "↓" in page.inner_text("#compare tr[data-key=log_loss] th")
    # every row store.compare has is there, apart from those the same in every version of a folded section
    table = demo.store.compare("churn", [5, 2]).to_dict()
    shown = page.eval_on_selector_all("#compare tr[data-key]", "rows => rows.map(r => r.dataset.section + '.' + r.dataset.key)")
    differing = [f"{s}.{r['key']}" for s, rows in table["sections"].items() for r in rows if r["differs"]]
    assert set(differing) <= set(shown) and "states.states" in shown
    page.screenshot(path=screenshots / "compare.png", full_page=True)

    follow(page, "text=show all")
    every = [f"{s}.{r['key']}" for s, rows in table["sections"].items() for r in rows]
    assert page.eval_on_selector_all("#compare tr[data-key]", "rows => rows.map(r => r.dataset.section + '.' + r.dataset.key)") == every


def test_plot_draws_every_point(page, server, demo, screenshots):
    page.goto(server.url + "/d/churn")
    follow(page, ".plots >> text=auc")
    assert page.url == server.url + "/d/churn/plot?metric=auc"
    circles = page.eval_on_selector_all("svg#plot circle", "cs => cs.map(c => [+c.getAttribute('cx'), +c.getAttribute('cy')])")
    assert len(circles) == len(demo.auc)
    assert page.get_attribute("svg#plot polyline", "points").count(",") == len(demo.auc)
    # left to right by version, higher AUC drawn higher (smaller y)
    by_version = sorted(demo.auc)
    assert [x for x, _ in circles] == sorted(x for x, _ in circles)
    order = sorted(range(len(by_version)), key=lambda i: demo.auc[by_version[i]])
    assert [circles[i][1] for i in order] == sorted((y for _, y in circles), reverse=True)
    box = page.locator("svg#plot").bounding_box()
    assert box["width"] > 300 and box["height"] > 100  # drawn, with the packaged stylesheet applied
    page.screenshot(path=screenshots / "plot.png", full_page=True)

    follow(page, "svg#plot a >> nth=0")  # each point links to its version
    assert page.url == server.url + "/d/churn/v/1"


def test_download_is_the_verified_file(page, server, demo):
    v = demo.store.info("docs", 1)
    page.goto(server.url + "/d/docs/v/1")
    for i, entry in enumerate(v.files):
        with page.expect_download() as download:
            page.click(f"#files tbody tr:nth-child({i + 1}) a.download")
        data = open(download.value.path(), "rb").read()
        assert hashlib.sha256(data).hexdigest() == entry.sha256 and len(data) == entry.size
        assert download.value.suggested_filename == entry.path.rsplit("/", 1)[-1]
