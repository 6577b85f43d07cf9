"""The same results always give the same bytes, so a re-upload stores no new object."""

from __future__ import annotations

from modelstore_core.testing.flavors import assert_deterministic_across_processes, assert_reupload_deduplicated, build, open_store

MAKE_MODELS = """
import numpy as np
import statsmodels.api as sm
rng = np.random.default_rng(3)
X = sm.add_constant(rng.normal(size=(50, 2)))
ols = sm.OLS(X @ [1.0, 2.0, 3.0] + rng.normal(size=50), X).fit()
logit = sm.Logit((X[:, 1] + rng.normal(size=50) > 0).astype(float), X).fit(disp=0)
"""


def test_reupload_is_deduplicated(tmp_path):
    scope = build(MAKE_MODELS)
    assert_reupload_deduplicated(open_store(tmp_path), tmp_path, {"ols": scope["ols"], "logit": scope["logit"]})


def test_same_results_in_another_process_give_the_same_bytes(tmp_path):
    assert_deterministic_across_processes(tmp_path, MAKE_MODELS, {"ols": "ols", "logit": "logit"})


def test_statistics_computed_between_uploads_change_nothing(tmp_path):
    """statsmodels caches what it computes on the results; the cache is not stored."""
    ols = build(MAKE_MODELS)["ols"]
    store = open_store(tmp_path)
    v1 = store.upload("m", model=ols)
    str(ols.summary())  # fills the results' caches (and lazy attributes)
    v2 = store.upload("m", model=ols)
    assert v2.files == v1.files
