"""Prophet models go through a real local store and come back as Prophet models forecasting the same."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from prophet import Prophet
from prophet_models import FRAME, future, simple, yhat

from modelstore_core import ModelStoreError
from modelstore_core.testing.flavors import assert_round_trip, open_store


def with_regressor_and_holidays():
    frame = FRAME.assign(temp=np.cos(np.arange(60)))
    holidays = pd.DataFrame({"holiday": "launch", "ds": pd.to_datetime(["2026-01-20", "2026-02-20"]), "lower_window": 0, "upper_window": 1})
    model = Prophet(yearly_seasonality=False, daily_seasonality=False, holidays=holidays, uncertainty_samples=0)
    model.add_regressor("temp", mode="multiplicative")
    model.add_country_holidays("FR")
    model.fit(frame)
    rows = future(model).assign(temp=np.cos(np.arange(74)))
    return model, lambda m: m.predict(rows)["yhat"].to_numpy()


def logistic_with_conditional_seasonality():
    frame = FRAME.assign(cap=14.0, floor=5.0, weekend=FRAME.ds.dt.dayofweek >= 5)
    model = Prophet(growth="logistic", weekly_seasonality=False, yearly_seasonality=False, daily_seasonality=False, uncertainty_samples=0)
    model.add_seasonality("weekend_weekly", period=7, fourier_order=2, condition_name="weekend")
    model.fit(frame)
    rows = future(model).assign(cap=14.0, floor=5.0)
    rows["weekend"] = rows.ds.dt.dayofweek >= 5
    return model, lambda m: m.predict(rows)["yhat"].to_numpy()


def with_uncertainty():
    model = simple(uncertainty_samples=50, seasonality_mode="multiplicative")

    def predict(m):
        np.random.seed(0)  # the intervals are sampled: the same draws on both sides
        return m.predict(future(m))[["yhat", "yhat_lower", "yhat_upper"]].to_numpy()

    return model, predict


CASES = {
    "simple": lambda: (simple(), yhat),
    "regressor-and-holidays": with_regressor_and_holidays,
    "logistic-conditional-seasonality": logistic_with_conditional_seasonality,
    "uncertainty-intervals": with_uncertainty,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip(tmp_path, case):
    model, predict = CASES[case]()
    v, loaded = assert_round_trip(open_store(tmp_path), open_store(tmp_path, cache="cold"), model, predict)
    assert v.flavor.format == "json" and v.flavor.safe is True
    assert [f.path for f in v.files] == ["model.json"]
    # model_from_json reads dates back at pandas' default resolution (ns), whatever the fit had (us on pandas 3).
    pd.testing.assert_frame_equal(loaded.history, model.history, check_dtype=False)
    assert list(loaded.seasonalities) == list(model.seasonalities) and loaded.extra_regressors == model.extra_regressors


def test_refusals_say_what_to_do(tmp_path):
    store = open_store(tmp_path)
    with pytest.raises(ModelStoreError, match="not fitted"):
        store.upload("m", model=Prophet())

    class MyProphet(Prophet):
        pass

    with pytest.raises(ModelStoreError, match="subclass"):
        store.upload("m", model=MyProphet())
    assert store.list_domains() == []
