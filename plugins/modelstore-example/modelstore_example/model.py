"""The "framework" of this example: a tiny ridge regression in pure Python.

It stands in for the framework a real plugin supports (scikit-learn, XGBoost...): the plugin
stores instances of :class:`TinyLinearModel` and loads them back.
"""

from __future__ import annotations

from collections.abc import Sequence


class TinyLinearModel:
    """``y = w . x + b``, fitted by ridge-regularised least squares.

    :param l2: the ridge penalty on the weights (not on the intercept).
    :param fit_intercept: learn ``b``; otherwise it stays 0.
    """

    def __init__(self, l2: float = 0.0, fit_intercept: bool = True):
        self.l2 = l2
        self.fit_intercept = fit_intercept
        self.weights: list[float] | None = None
        self.intercept = 0.0

    def get_params(self) -> dict[str, float | bool]:
        return {"l2": self.l2, "fit_intercept": self.fit_intercept}

    def fit(self, X: Sequence[Sequence[float]], y: Sequence[float]) -> TinyLinearModel:
        rows = [[*map(float, x), *([1.0] if self.fit_intercept else [])] for x in X]
        n = len(rows[0])
        # Normal equations (A^T A + l2 I) w = A^T y, solved by Gauss-Jordan elimination.
        a = [[sum(r[i] * r[j] for r in rows) for j in range(n)] for i in range(n)]
        b = [sum(r[i] * t for r, t in zip(rows, y, strict=True)) for i in range(n)]
        for i in range(n - (1 if self.fit_intercept else 0)):
            a[i][i] += self.l2
        for col in range(n):
            pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
            a[col], a[pivot], b[col], b[pivot] = a[pivot], a[col], b[pivot], b[col]
            for r in range(n):
                if r != col and a[col][col]:
                    f = a[r][col] / a[col][col]
                    a[r] = [x - f * y_ for x, y_ in zip(a[r], a[col], strict=True)]
                    b[r] -= f * b[col]
        solution = [b[i] / a[i][i] if a[i][i] else 0.0 for i in range(n)]
        if self.fit_intercept:
            self.weights, self.intercept = solution[:-1], solution[-1]
        else:
            self.weights, self.intercept = solution, 0.0
        return self

    def predict(self, X: Sequence[Sequence[float]]) -> list[float]:
        if self.weights is None:
            raise ValueError("fit the model before predicting")
        return [sum(w * float(v) for w, v in zip(self.weights, x, strict=True)) + self.intercept for x in X]
