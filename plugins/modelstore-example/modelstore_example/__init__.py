"""modelstore-example: a minimal, complete plugin, written to be copied.

It implements every modelstore hook:

* a flavor, ``example``: stores :class:`~modelstore_example.model.TinyLinearModel` as one JSON
  file and loads it back (``modelstore_serialize``, ``modelstore_deserialize``, ``modelstore_flavors``);
* a metadata collector that records the model's hyperparameters (``modelstore_collect_metadata``);
* a storage backend for ``memory://`` URLs (``modelstore_store``, ``modelstore_schemes``);
* a command, ``modelstore example-fit DOMAIN`` (``modelstore_cli_commands``).

This module holds only hook implementations; the code they call lives beside it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelstore_core.plugin_api import Flavor, VersionFiles, hookimpl

FLAVOR = "example"
MODEL_MODULE = "modelstore_example.model"
MODEL_FILE = "model.json"


def _is_ours(model: Any) -> bool:
    # Recognise the model by its class's module name, before importing anything of the framework.
    return any(cls.__module__ == MODEL_MODULE and cls.__name__ == "TinyLinearModel" for cls in type(model).__mro__)


# --- flavor --------------------------------------------------------------------------


@hookimpl
def modelstore_serialize(model: Any, directory: Path) -> Flavor | None:
    if not _is_ours(model):
        return None
    if model.weights is None:
        raise ValueError("fit the TinyLinearModel before storing it")
    state = {"params": model.get_params(), "weights": model.weights, "intercept": model.intercept}
    # sort_keys and a fixed layout: the same model always gives the same bytes (deduplicated).
    (directory / MODEL_FILE).write_text(json.dumps(state, sort_keys=True, indent=1) + "\n", encoding="utf-8")
    return Flavor(
        name=FLAVOR,
        format="json",
        plugin="modelstore-example",
        model_class=f"{MODEL_MODULE}.TinyLinearModel",
        safe=True,  # JSON executes nothing when loaded
        dependencies=[],  # the distributions of the framework; this one has none of its own
        options={"file": MODEL_FILE},
    )


@hookimpl
def modelstore_deserialize(flavor: Flavor, verified: VersionFiles) -> Any:
    if flavor.name != FLAVOR:
        return None
    from .model import TinyLinearModel  # the framework is imported only to load our own flavor

    # Read through the core: the file is hashed as it is read (the read that reaches its end raises
    # IntegrityError unless it holds the recorded bytes), in one pass, and a name read from the
    # record is checked against the version's files.
    with verified.open(flavor.options["file"]) as f:
        state = json.loads(f.read(f.size).decode("utf-8"))
    model = TinyLinearModel(**state["params"])
    model.weights, model.intercept = state["weights"], state["intercept"]
    return model


@hookimpl
def modelstore_flavors() -> list[str]:
    return [FLAVOR]


# --- metadata ------------------------------------------------------------------------


@hookimpl
def modelstore_collect_metadata(model: Any, flavor: Flavor) -> dict[str, Any] | None:
    if flavor.name != FLAVOR:
        return None
    return {
        "model": {
            "framework": "modelstore-example",
            "hyperparameters": model.get_params(),
            "n_features": len(model.weights),
        }
    }


# --- storage -------------------------------------------------------------------------


@hookimpl
def modelstore_store(url: str, scheme: str):
    if scheme != "memory":
        return None
    from .storage import open_memory_storage

    return open_memory_storage(url)


@hookimpl
def modelstore_schemes() -> list[str]:
    return ["memory"]


# --- command line --------------------------------------------------------------------


@hookimpl
def modelstore_cli_commands() -> list:
    from .cli import example_fit  # click and the command load only when the command line asks

    return [example_fit]
