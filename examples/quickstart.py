"""A round trip on the local-directory default: upload a model's files, list, load, promote.

Run: python examples/quickstart.py   (uses $MODELSTORE_URL, else a per-user data directory)
"""

import json
import tempfile
from pathlib import Path

from modelstore_core import ModelStore

store = ModelStore()
print(f"store: {store.url}")

with tempfile.TemporaryDirectory() as tmp:
    weights = Path(tmp) / "weights.json"
    weights.write_text(json.dumps({"coef": [0.5, -1.25, 3.0], "intercept": 0.1}))
    version = store.upload("quickstart", files=[weights], tags={"owner": "you"})

print(f"uploaded {version.domain} v{version.version} ({version.size} bytes, git: {version.metadata['git']})")
print("versions:", [v.version for v in store.list_versions("quickstart")])
[path] = store.load("quickstart")  # raw files load back as verified local paths
assert json.loads(path.read_text())["coef"] == [0.5, -1.25, 3.0]
store.set_state("quickstart", version.version, "production")
print("states:", store.states("quickstart"))
print("loaded:", path)
