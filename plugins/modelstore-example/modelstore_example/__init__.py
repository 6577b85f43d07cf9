"""modelstore-example: a minimal, complete plugin, written to be copied.

It implements every modelstore hook, through the bases in ``modelstore_core.plugin_api`` (which
write the hook implementations, and their "is this mine?" checks, from what the class states):

* a flavor, ``example``: stores :class:`~modelstore_example.model.TinyLinearModel` as one JSON
  file and loads it back (:class:`~modelstore_core.plugin_api.FlavorPlugin`: ``serialize``,
  ``deserialize``);
* a metadata collector that records the model's hyperparameters (``metadata``);
* a storage backend for ``memory://`` URLs (:class:`~modelstore_core.plugin_api.StoragePlugin`: ``open``);
* a transport to ``folder:///path`` references, for ``ModelStore.push``/``pull``
  (:class:`~modelstore_core.plugin_api.TransportPlugin`: ``open_transport``);
* a command, ``modelstore example-fit DOMAIN`` (``modelstore_cli_commands``, a hook implementation
  written directly: no base is needed for it).

The entry point names the plugin object, ``example = "modelstore_example:plugin"``. This module
holds only the plugin; the code it calls lives beside it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelstore_core.plugin_api import Flavor, FlavorPlugin, StoragePlugin, TransportPlugin, UsageError, VersionFiles, hookimpl

MODEL_MODULE = "modelstore_example.model"
MODEL_FILE = "model.json"


class ExamplePlugin(FlavorPlugin, StoragePlugin, TransportPlugin):
    flavor = "example"
    modules = ("modelstore_example",)  # the "framework": TinyLinearModel lives in modelstore_example.model
    schemes = ("memory",)
    transports = ("folder",)

    def handles(self, model: Any) -> bool:
        # The base decides from module names (nothing imported); this one looks closer, still by name.
        return super().handles(model) and any(
            cls.__module__ == MODEL_MODULE and cls.__name__ == "TinyLinearModel" for cls in type(model).__mro__
        )

    # --- flavor --------------------------------------------------------------------------

    def serialize(self, model: Any, directory: Path, options: dict[str, Any]) -> Flavor:
        if model.weights is None:
            raise ValueError("fit the TinyLinearModel before storing it")
        state = {"params": model.get_params(), "weights": model.weights, "intercept": model.intercept}
        # sort_keys and a fixed layout: the same model always gives the same bytes (deduplicated).
        (directory / MODEL_FILE).write_text(json.dumps(state, sort_keys=True, indent=1) + "\n", encoding="utf-8")
        return Flavor(
            name=self.flavor,
            format="json",
            plugin="modelstore-example",
            model_class=f"{MODEL_MODULE}.TinyLinearModel",
            safe=True,  # JSON executes nothing when loaded
            dependencies=[],  # the distributions of the framework; this one has none of its own
            options={"file": MODEL_FILE},
        )

    def deserialize(self, flavor: Flavor, files: list[str], options: dict[str, Any], verified: VersionFiles) -> Any:
        from .model import TinyLinearModel  # the framework is imported only to load our own flavor

        # Read through the core: the file is hashed as it is read (the read that reaches its end raises
        # IntegrityError unless it holds the recorded bytes), in one pass, and a name read from the
        # record is checked against the version's files.
        with verified.open(flavor.options["file"]) as f:
            state = json.loads(f.read(f.size).decode("utf-8"))
        model = TinyLinearModel(**state["params"])
        model.weights, model.intercept = state["weights"], state["intercept"]
        return model

    # --- metadata ------------------------------------------------------------------------

    def metadata(self, model: Any, flavor: Flavor) -> dict[str, Any]:
        return {
            "model": {
                "framework": "modelstore-example",
                "hyperparameters": model.get_params(),
                "n_features": len(model.weights),
            }
        }

    # --- storage -------------------------------------------------------------------------

    def open(self, url: str, scheme: str, options: dict[str, Any]):
        from .storage import open_memory_storage

        return open_memory_storage(url)

    # --- transport -----------------------------------------------------------------------

    def open_transport(self, ref: str, scheme: str, options: dict[str, Any]):
        from .transport import FolderTransport

        if options:
            raise UsageError(f"folder:// takes no options, not {', '.join(sorted(options))}")
        return FolderTransport(ref)

    # --- command line --------------------------------------------------------------------

    @hookimpl
    def modelstore_cli_commands(self) -> list:
        from .cli import example_fit  # click and the command load only when the command line asks

        return [example_fit]


plugin = ExamplePlugin()
