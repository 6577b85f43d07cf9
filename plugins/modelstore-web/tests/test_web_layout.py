"""The web view's pages fit a 1280 px wide window (the browser fixture's viewport) with versions
shaped like xgboost's: long values wrap inside their cells instead of pushing the page sideways."""

from __future__ import annotations

import pytest

VIEWPORT = 1280


@pytest.mark.parametrize(
    "path",
    ["/d/boost/compare?v=1&v=2&v=3&v=4", "/d/boost/compare?v=1&v=2&v=3&v=4&all=1", "/d/boost/v/2", "/d/boost/v/4?all=1"],
)
def test_pages_fit_the_window(page, serve, boost, screenshots, path):
    assert page.viewport_size["width"] == VIEWPORT
    page.goto(serve(boost).url + path)
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT
    if "compare" in path:
        box = page.locator("#compare").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORT  # all of the table in view, no scrolling needed
        page.screenshot(path=screenshots / "compare-4-versions.png", full_page=True)


def test_long_values_wrap_whole_in_their_cells(page, serve, boost):
    page.goto(serve(boost).url + "/d/boost/compare?v=1&v=2&v=3&v=4")
    recorded = boost.info("boost", 4).params["feature_weights"]  # a list recorded as a param: one word of JSON
    cell = page.locator("#compare tr[data-key=feature_weights] td").nth(3)
    assert cell.inner_text().replace("\n", "") == recorded
    box = cell.bounding_box()
    assert (
        box["x"] + box["width"] <= VIEWPORT
        and box["height"] > 2 * page.locator("#compare tr[data-key=n_estimators] td").nth(3).bounding_box()["height"]
    )
