"""The web view shows values as the command line does (modelstore_core.display), in a real headless
Chromium against versions shaped like xgboost's (web_helpers.build_xgboost_like)."""

from __future__ import annotations

from web_helpers import BOOST_SETTINGS


def cells(page, selector: str) -> dict[str, list[str]]:
    """The rows of the table ``selector``: each row's header text -> the text of its cells."""
    found = page.eval_on_selector_all(f"{selector} tr", "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))")
    return {row[0]: row[1:] for row in found if row}


def test_values_read_as_on_the_command_line(page, serve, boost):
    server = serve(boost)
    page.goto(server.url + "/d/boost/compare?v=1&v=2&v=3&v=4")
    shown = cells(page, "#compare")
    assert shown["learning_rate"] == ["", "0.123457", "0.05", "0.01"]  # six significant digits, as `modelstore compare`
    assert shown["gpu"] == ["false", "false", "true", "true"]
    assert shown["auc ↑"][0] == f"{0.9 + 0.0123456789:.6g}"

    page.goto(server.url + "/d/boost/v/2")
    assert "gpu=false" in page.inner_text("#tags")
    params = cells(page, "table.kv:has(caption:text-is('params'))")
    assert params["learning_rate"] == ["0.123457"] and params["enable_categorical"] == ["false"]
    assert params["monotone_constraints"] == [str(BOOST_SETTINGS[1]["monotone_constraints"]).replace(" ", "")]
    page.goto(server.url + "/d/boost/v/2?all=1")
    page.click("#plugin-metadata summary")
    metadata = cells(page, "#plugin-metadata table")
    assert metadata["model.hyperparameters.missing"] == ["nan"]  # stored as {"float": "nan"}


def test_version_page_says_each_fact_once_and_leaves_out_unset_params(page, serve, boost):
    server = serve(boost)
    recorded = boost.info("boost", 2).params
    page.goto(server.url + "/d/boost/v/2")
    params = cells(page, "table.kv:has(caption:text-is('params'))")
    assert sorted(params) == sorted(name for name, value in recorded.items() if value is not None)
    assert len(params) < len(recorded) - 30  # xgboost's scikit-learn API leaves most settings null
    page.click("#plugin-metadata summary")
    metadata = cells(page, "#plugin-metadata table")
    assert not [key for key in metadata if key.startswith("model.hyperparameters.")]  # the params say them
    assert "model.booster_config.learner.gradient_booster.gbtree_model_param.num_trees" in metadata
    assert "not shown" in page.inner_text("#hidden")

    page.click("#hidden a")
    page.wait_for_url("**/d/boost/v/2?all=1")
    assert sorted(cells(page, "table.kv:has(caption:text-is('params'))")) == sorted(recorded)
    page.click("#plugin-metadata summary")
    assert "model.hyperparameters.max_depth" in cells(page, "#plugin-metadata table")
