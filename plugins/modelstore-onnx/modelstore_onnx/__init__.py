"""modelstore plugin for ONNX: the ``onnx`` flavor.

An ``onnx.ModelProto`` (from skl2onnx, ``torch.onnx``, tf2onnx or built by hand) is written as
``model.onnx``, with its large tensors in ``model.onnx.data`` beside it when the model is over
protobuf's 2 GB or ``upload(..., external_data=True)``. ``load`` returns a ``ModelProto``, or with
``session=True`` an ``onnxruntime.InferenceSession``; ``onnx.checker`` runs first, and tensor data
is read only from the version's own files. ONNX is data: no version needs ``trust=True``.

Nothing here imports onnx until an ONNX model is actually handled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelstore_core.plugin_api import Flavor, FlavorPlugin, VersionFiles

FLAVOR = "onnx"
PLUGIN = "modelstore-onnx"


class ONNXPlugin(FlavorPlugin):
    flavor = FLAVOR
    modules = ("onnx",)

    def serialize(self, model: Any, directory: Path, options: dict[str, Any]) -> Flavor:
        from ._persist import serialize

        return serialize(model, directory, options)

    def deserialize(self, flavor: Flavor, files: list[str], options: dict[str, Any], verified: VersionFiles) -> Any:
        from ._persist import deserialize

        return deserialize(flavor, files, options, verified)

    def metadata(self, model: Any, flavor: Flavor) -> dict[str, Any]:
        from ._metadata import describe

        return {"model": describe(model)}


plugin = ONNXPlugin()
