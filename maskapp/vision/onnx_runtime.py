"""onnxruntime, set up once for every model it runs (the face detector and the exported classifier)."""

from __future__ import annotations

import os

import onnx
import onnxruntime as ort


def default_threads() -> int:
    """The cores this process may use (a container may allow fewer than the machine has)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def new_session(model_bytes: bytes, threads: int | None = None) -> ort.InferenceSession:
    """A CPU session for an ONNX model. Sessions may be run from several threads at once."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads or default_threads()
    # Idle onnxruntime workers spin by default, stealing the cores the other stage (and torch) needs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Weights decayed to ~1e-40 make denormal products, which x86 computes many times slower: flushing them
    # to zero made the fully fine-tuned classifier 1.5-2x faster and changes no label (README, bench).
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


# centerface.onnx declares a fixed 10x3x32x32 input, which onnxruntime enforces. The graph itself is
# fully convolutional, so declaring its inputs and outputs with symbolic dims lets it run at the frame's size.
def free_input_size(model_bytes: bytes) -> bytes:
    """An ONNX model whose graph inputs and outputs accept any shape."""
    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    # Initializers listed as graph inputs block constant folding in onnxruntime: drop them there.
    initializers = {initializer.name for initializer in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    del graph.input[:]
    graph.input.extend(inputs)
    del graph.value_info[:]  # shape hints for the old fixed size
    for value in (*graph.input, *graph.output):
        for index, dim in enumerate(value.type.tensor_type.shape.dim):
            dim.dim_param = f"dim{index}"  # a oneof: clears the fixed dim_value
    return model.SerializeToString()
