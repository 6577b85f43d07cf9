"""A flavor written without the bases: a module of ``@hookimpl`` functions, the way any
third-party plugin may be written (its entry point then names the module). Each implementation
takes only the arguments it uses, as pluggy allows.

It stores :class:`Threshold`, a one-number classifier, as ``threshold.json``.
"""

from __future__ import annotations

import json

from modelstore_core.plugin_api import Flavor, hookimpl, model_file

FLAVOR = "threshold"


class Threshold:
    """``x >= cut``."""

    def __init__(self, cut: float):
        self.cut = cut

    def predict(self, xs: list[float]) -> list[bool]:
        return [x >= self.cut for x in xs]


@hookimpl
def modelstore_serialize(model, directory):
    if not isinstance(model, Threshold):
        return None
    (directory / "threshold.json").write_text(json.dumps({"cut": model.cut}))
    return Flavor(name=FLAVOR, format="json", plugin="modelstore-threshold", safe=True, options={"file": "threshold.json"})


# No ``verified`` argument: the core calls this only once every file of the version is hashed.
@hookimpl
def modelstore_deserialize(flavor, directory, files):
    if flavor.name != FLAVOR:
        return None
    path = model_file(directory, files, flavor.options.get("file"))
    return Threshold(json.loads(path.read_text())["cut"])


@hookimpl
def modelstore_flavors():
    return [FLAVOR]


@hookimpl
def modelstore_collect_metadata(model, flavor):
    if flavor.name != FLAVOR:
        return None
    return {"model": {"hyperparameters": {"cut": model.cut}}}
