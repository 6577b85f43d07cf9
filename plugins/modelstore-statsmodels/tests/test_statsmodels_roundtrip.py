"""statsmodels results go through a real local store and come back as the same class, predicting the same."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from statsmodels.tsa.arima.model import ARIMA

from modelstore_core import ModelStoreError
from modelstore_core.testing.flavors import assert_round_trip, open_store

RNG = np.random.default_rng(0)
FRAME = pd.DataFrame({"x": RNG.normal(size=80), "z": RNG.normal(size=80)})
FRAME["y"] = 1.5 * FRAME.x - FRAME.z + RNG.normal(size=80)
FRAME["count"] = RNG.poisson(np.exp(0.3 * FRAME.x))
FRAME["event"] = (FRAME.x + RNG.normal(size=80) > 0).astype(int)
SERIES = pd.Series(np.cumsum(RNG.normal(size=60)), index=pd.date_range("2026-01-01", periods=60, freq="D"))


def ols_formula():
    return smf.ols("y ~ x + z", data=FRAME).fit(), lambda r: r.predict(FRAME)


def logit():
    return sm.Logit(FRAME.event, sm.add_constant(FRAME[["x", "z"]])).fit(disp=0), lambda r: r.predict(sm.add_constant(FRAME[["x", "z"]]))


def glm_poisson():
    model = smf.glm("count ~ x", data=FRAME, family=sm.families.Poisson()).fit()
    return model, lambda r: r.predict(FRAME)


def arima():
    return ARIMA(SERIES, order=(1, 1, 0)).fit(), lambda r: r.forecast(5)


#: The clock readings statsmodels prints in a summary's top table (``Date:`` and ``Time:``, taken
#: when the summary is built): everything else in it comes from the fitted results.
CLOCK = re.compile(r"(?<=Date:)( +)[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4}|(?<=Time:)( +)\d\d:\d\d:\d\d")


def summary_without_clock(results) -> str:
    text, readings = CLOCK.subn(lambda m: m.group(1) or m.group(2), str(results.summary()))
    assert readings == 2, text  # the pattern still matches what statsmodels prints
    return text


CASES = {"ols-formula": ols_formula, "logit": logit, "glm-poisson": glm_poisson, "arima": arima}


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip(tmp_path, case):
    model, predict = CASES[case]()
    reader = open_store(tmp_path, cache="cold")
    v, loaded = assert_round_trip(open_store(tmp_path), reader, model, predict, load_options={"trust": True})
    assert v.flavor.format == "pickle" and v.flavor.safe is False
    assert [f.path for f in v.files] == ["model.pickle"]
    np.testing.assert_array_equal(np.asarray(loaded.params), np.asarray(model.params))
    assert summary_without_clock(loaded) == summary_without_clock(model)


def test_unfitted_model_is_refused(tmp_path):
    store = open_store(tmp_path)
    with pytest.raises(ModelStoreError, match=r"fit\(\)"):
        store.upload("m", model=sm.OLS(FRAME.y, FRAME[["x"]]))
    assert store.list_domains() == []
