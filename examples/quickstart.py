"""The main job on a local-directory store: train, upload, list, load, promote.

Run: python examples/quickstart.py [STORE]
The store is STORE (a directory or URL), else $MODELSTORE_URL, else a temporary directory that is
removed at the end, so trying the example leaves nothing behind in your real per-user store.
Needs modelstore-core and modelstore-sklearn[sklearn] (the README's first command installs both).
"""

import json
import os
import sys
import tempfile
from pathlib import Path

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelstore_core import ModelStore

X, y = load_iris(return_X_y=True)
clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)

with tempfile.TemporaryDirectory() as tmp:
    url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("MODELSTORE_URL") or str(Path(tmp) / "store")
    store = ModelStore(url, cache_dir=Path(tmp) / "cache")
    print(f"store:    {store.url}")
    features = Path(tmp) / "features.json"
    features.write_text(json.dumps(["sepal length", "sepal width", "petal length", "petal width"]))
    v = store.upload("iris", model=clf, extras=[features], tags={"owner": "quickstart"})

    print(f"uploaded: {v.domain} v{v.version}, {v.size} bytes ({v.bytes_written} new), flavor {v.flavor.name}/{v.flavor.format}")
    meta = v.metadata
    print(f"metadata: python {meta['runtime']['python']}, scikit-learn {meta['dependencies'].get('scikit-learn')}, git {meta['git']}")
    print(f"versions: {[x.version for x in store.list_versions('iris')]}")

    store.set_state("iris", v.version, "production")
    loaded = store.load("iris", state="production")  # every file's sha256 checked first; no pickle involved
    assert (loaded.predict(X) == clf.predict(X)).all()
    print(f"loaded:   {type(loaded).__name__} from state production -> v{store.states('iris')['production']}, predictions identical")
