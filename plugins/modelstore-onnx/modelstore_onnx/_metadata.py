"""What a reader of an ``onnx`` version wants to know without loading it."""

from __future__ import annotations

from typing import Any


def describe(model: Any) -> dict[str, Any]:
    import onnx

    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    return {
        "framework": "onnx",
        "framework_version": onnx.__version__,
        "ir_version": model.ir_version,
        "opset_import": {op.domain or "ai.onnx": op.version for op in model.opset_import},
        "producer_name": model.producer_name,
        "producer_version": model.producer_version,
        "model_version": model.model_version,
        "domain": model.domain,
        "graph_name": graph.name,
        "inputs": [_value_info(v) for v in graph.input if v.name not in initializers],
        "outputs": [_value_info(v) for v in graph.output],
        "num_nodes": len(graph.node),
        "num_initializers": len(graph.initializer),
        "op_types": sorted({node.op_type for node in graph.node}),
        # ONNX keeps no training parameters; converters put what they know in metadata_props.
        "hyperparameters": {p.key: p.value for p in model.metadata_props},
    }


def _value_info(value: Any) -> dict[str, Any]:
    import onnx

    tensor = value.type.tensor_type
    info: dict[str, Any] = {"name": value.name}
    if value.type.HasField("tensor_type"):
        info["elem_type"] = onnx.TensorProto.DataType.Name(tensor.elem_type) if tensor.elem_type else None
        if tensor.HasField("shape"):
            info["shape"] = [d.dim_param or (d.dim_value if d.HasField("dim_value") else None) for d in tensor.shape.dim]
    else:
        info["type"] = value.type.WhichOneof("value")
    return info
