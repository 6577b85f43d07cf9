"""What a reader of a ``prophet`` version wants to know without loading it."""

from __future__ import annotations

from typing import Any

from modelstore_core.plugin_api import json_value

#: Prophet's constructor settings, as the model keeps them.
SETTINGS = (
    "growth",
    "n_changepoints",
    "changepoint_range",
    "yearly_seasonality",
    "weekly_seasonality",
    "daily_seasonality",
    "seasonality_mode",
    "seasonality_prior_scale",
    "holidays_prior_scale",
    "changepoint_prior_scale",
    "holidays_mode",
    "mcmc_samples",
    "interval_width",
    "uncertainty_samples",
    "scaling",
)


def describe(model: Any) -> dict[str, Any]:
    import prophet

    history = model.history
    return {
        "framework": "prophet",
        "framework_version": prophet.__version__,
        "hyperparameters": {key: json_value(getattr(model, key, None)) for key in SETTINGS},
        "seasonalities": {
            name: {"period": json_value(s["period"]), "fourier_order": json_value(s["fourier_order"]), "mode": s["mode"]}
            for name, s in model.seasonalities.items()
        },
        "extra_regressors": sorted(model.extra_regressors),
        "country_holidays": model.country_holidays,
        "history_rows": len(history),
        "history_start": history["ds"].min().isoformat(),
        "history_end": history["ds"].max().isoformat(),
        "fit_kwargs": json_value(model.fit_kwargs),
    }
