"""What a version records about its Prophet model."""

from __future__ import annotations

import json

import prophet
from prophet_models import simple

from modelstore_core.testing.flavors import open_store


def test_metadata(tmp_path):
    model = simple(changepoint_prior_scale=0.2)
    open_store(tmp_path).upload("m", model=model)
    record = open_store(tmp_path, cache="c2").info("m").metadata
    info = record["model"]
    assert info["framework"] == "prophet" and info["framework_version"] == prophet.__version__
    assert record["flavor"]["model_class"] == "prophet.forecaster.Prophet" and record["flavor"]["format"] == "json"
    assert record["dependencies"]["prophet"] == prophet.__version__
    hp = info["hyperparameters"]
    assert hp["changepoint_prior_scale"] == 0.2 and hp["growth"] == "linear" and hp["weekly_seasonality"] is True
    assert info["seasonalities"]["weekly"] == {"period": 7, "fourier_order": 3, "mode": "additive"}
    assert info["history_rows"] == 60 and info["history_start"] == "2026-01-01T00:00:00"
    json.dumps(record, allow_nan=False)
