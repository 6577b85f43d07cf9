"""Small Prophet models that fit in a fraction of a second (Stan's optimizer on 60 daily points)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

logging.getLogger("cmdstanpy").setLevel(logging.WARNING)  # one INFO line per fit otherwise

DAYS = pd.date_range("2026-01-01", periods=60, freq="D")
T = np.arange(60)
FRAME = pd.DataFrame({"ds": DAYS, "y": 10 + np.sin(T / 7 * 2 * np.pi) + 0.05 * T + np.random.default_rng(0).normal(0, 0.1, 60)})


def simple(**settings):
    from prophet import Prophet

    model = Prophet(yearly_seasonality=False, daily_seasonality=False, weekly_seasonality=True, **{"uncertainty_samples": 0, **settings})
    return model.fit(FRAME)


def future(model, periods: int = 14) -> pd.DataFrame:
    return model.make_future_dataframe(periods=periods)


def yhat(model) -> np.ndarray:
    return model.predict(future(model))["yhat"].to_numpy()
