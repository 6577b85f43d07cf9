"""What a version records about its statsmodels results (readable without unpickling anything)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import statsmodels
import statsmodels.formula.api as smf
from statsmodels.tsa.arima.model import ARIMA

from modelstore_core.testing.flavors import open_store


def test_ols_metadata(tmp_path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=40)})
    frame["y"] = 2 * frame.x + rng.normal(size=40)
    model = smf.ols("y ~ x", data=frame).fit()
    open_store(tmp_path).upload("m", model=model)
    record = open_store(tmp_path, cache="c2").info("m").metadata
    info = record["model"]
    assert info["framework"] == "statsmodels" and info["framework_version"] == statsmodels.__version__
    assert record["flavor"]["model_class"] == "statsmodels.regression.linear_model.RegressionResultsWrapper"
    assert record["flavor"]["safe"] is False and record["dependencies"]["statsmodels"] == statsmodels.__version__
    assert info["model"] == "statsmodels.regression.linear_model.OLS"
    assert info["exog_names"] == ["Intercept", "x"] and info["endog_names"] == "y" and info["nobs"] == 40
    assert info["params"] == {"Intercept": model.params["Intercept"], "x": model.params["x"]}
    assert info["rsquared"] == model.rsquared and type(info["aic"]) is float
    json.dumps(record, allow_nan=False)


def test_arima_hyperparameters(tmp_path):
    series = np.cumsum(np.random.default_rng(2).normal(size=50))
    v = open_store(tmp_path).upload("a", model=ARIMA(series, order=(2, 1, 0)).fit())
    hp = v.metadata["model"]["hyperparameters"]
    assert hp["order"] == [2, 1, 0] and hp["trend"] == "n"
