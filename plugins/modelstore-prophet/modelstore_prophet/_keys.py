"""The keys of a Prophet document, as ``prophet.serialize.model_to_json`` writes them (Prophet 1.1
to 1.5), listed here so that checking a document imports no Prophet."""

SIMPLE = (
    "growth",
    "n_changepoints",
    "specified_changepoints",
    "changepoint_range",
    "yearly_seasonality",
    "weekly_seasonality",
    "daily_seasonality",
    "seasonality_mode",
    "seasonality_prior_scale",
    "changepoint_prior_scale",
    "holidays_prior_scale",
    "mcmc_samples",
    "interval_width",
    "uncertainty_samples",
    "y_scale",
    "y_min",
    "scaling",
    "logistic_floor",
    "country_holidays",
    "component_modes",
    "holidays_mode",
)
PANDAS = ("changepoints", "history_dates", "train_holiday_names", "start", "t_scale", "holidays", "history", "train_component_cols")
OTHER = ("changepoints_t", "seasonalities", "extra_regressors", "fit_kwargs", "params", "__prophet_version")
ALL = SIMPLE + PANDAS + OTHER
