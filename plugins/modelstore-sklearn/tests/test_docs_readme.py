"""The README's row for this plugin, checked against what loading does: what loads as it is, and
what needs ``trusted_types=``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from modelstore_sklearn._persist import DEFAULT_TRUSTED_TYPES
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import SplineTransformer

from modelstore_core import UntrustedArtifactError
from modelstore_core.testing.flavors import open_store

README = Path(__file__).resolve().parents[3] / "README.md"
RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 3))
Y = (X[:, 0] > 0).astype(int)


def sklearn_row() -> str:
    [row] = [line for line in README.read_text().splitlines() if line.startswith("| [modelstore-sklearn]")]
    return row


@pytest.mark.parametrize(
    "model",
    [RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0), GradientBoostingClassifier(n_estimators=3)],
    ids=["forest", "boosting"],
)
def test_what_the_readme_says_loads_as_it_is_does(tmp_path, model):
    assert "trees, forests, boosting and KD/ball-tree indexes checked and loaded as they are" in sklearn_row()
    model.fit(X, Y)
    open_store(tmp_path).upload("trees", model=model)
    loaded = open_store(tmp_path, cache="fresh").load("trees")  # no trusted_types
    assert (loaded.predict_proba(X) == model.predict_proba(X)).all()


def test_what_the_readme_says_needs_trusted_types_does(tmp_path):
    clause = sklearn_row().split("e.g.")[1].split("need `trusted_types")[0]
    named = re.findall(r"`([a-z_]+(?:\.\w+)+)`", clause)
    assert named == ["sklearn.metrics._dist_metrics.MahalanobisDistance64", "scipy.interpolate._bsplines.BSpline"]
    assert not set(named) & set(DEFAULT_TRUSTED_TYPES)
    models = {
        "knn": KNeighborsClassifier(algorithm="ball_tree", metric="mahalanobis", metric_params={"VI": np.eye(3)}).fit(X, Y),
        "spline": SplineTransformer(n_knots=4).fit(X),
    }
    store, reader = open_store(tmp_path), open_store(tmp_path, cache="fresh")
    for (domain, model), name in zip(models.items(), named, strict=True):
        store.upload(domain, model=model)
        with pytest.raises(UntrustedArtifactError, match=re.escape(name)):
            reader.load(domain)
    assert type(reader.load("knn", trusted_types=named[:1])) is KNeighborsClassifier  # the README's own example
