"""nnparity implementations: the NumPy reference, PyTorch and TensorFlow from primitives, and the
frameworks' built-in layers, all behind one contract (see DESIGN.md).

    from impls import backend
    tf = backend("tensorflow")          # imports TensorFlow only now
    y, h = tf.gru(tf.asarray(x, "float32"), weights, "reset_after")
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .contract.spec import VARIANTS
from .frameworks import BackendUnavailable

# name -> (module, framework it needs or None). The first three compute from primitives;
# the last two wrap the frameworks' built-in layers, fed through impls.convert.
IMPLEMENTATIONS: dict[str, tuple[str, str | None]] = {
    "numpy": ("impls.primitives.numpy_impl", None),
    "torch": ("impls.primitives.torch_impl", "torch"),
    "tensorflow": ("impls.primitives.tf_impl", "tensorflow"),
    "jax": ("impls.primitives.jax_impl", "jax"),
    "torch_nn": ("impls.builtin.torch_builtin", "torch"),
    "keras": ("impls.builtin.keras_builtin", "keras"),
    "flax": ("impls.builtin.flax_builtin", "flax"),
    "onnxruntime": ("impls.runtime.ort_impl", "onnxruntime"),
}
BACKENDS = ("numpy", "torch", "tensorflow", "jax")
BUILTINS = ("torch_nn", "keras", "flax")
LAYER_COUNTS = ("torch_nn", "keras")
"""Built-in voices that also count the parameters and FLOPs of layers they build (issue 4); Flax's are not offered."""
RUNTIMES = ("onnxruntime",)
"""Voices that run a graph built from canonical weights: ONNX Runtime on hand-built ONNX graphs."""
SHORT = {"numpy": "np", "torch": "torch", "tensorflow": "tf", "jax": "jax", "torch_nn": "torch_nn", "keras": "keras",
         "flax": "flax", "onnxruntime": "ort"}
"""Short names for test ids: gru-tf-float32-reset_after-B3T7I5H4."""

# What each implementation computes, known without importing its framework (pytest collects the
# matrix from this). The backends written from primitives do every variant; a built-in layer only
# the equations it was built for.
GRU_VARIANTS: dict[str, tuple[str, ...]] = {
    "numpy": VARIANTS,
    "torch": VARIANTS,
    "tensorflow": VARIANTS,
    "jax": VARIANTS,
    "torch_nn": ("reset_after",),  # torch.nn.GRU: r applied after the recurrent product, one form only
    "keras": ("reset_before", "reset_after"),  # keras.layers.GRU(reset_after=False / True)
    "flax": ("reset_after",),  # flax.linen.GRUCell: reset_after with the z and r biases folded (convert.gru_to_flax)
    "onnxruntime": ("reset_before", "reset_after"),  # the ONNX GRU operator, linear_before_reset = 0 / 1
}

__all__ = ["BACKENDS", "BUILTINS", "GRU_VARIANTS", "IMPLEMENTATIONS", "RUNTIMES", "SHORT", "BackendUnavailable", "backend", "unavailable_reason"]


def backend(name: str) -> ModuleType:
    """Load the implementation `name` lazily. Raises BackendUnavailable with the reason."""
    if name not in IMPLEMENTATIONS:
        raise ValueError(f"unknown implementation {name!r}; valid: {', '.join(IMPLEMENTATIONS)}")
    module, _ = IMPLEMENTATIONS[name]
    try:
        return importlib.import_module(module)
    except BackendUnavailable:
        raise
    except ImportError as e:
        raise BackendUnavailable(f"implementation {name!r} cannot load: {e}") from e


def unavailable_reason(name: str) -> str | None:
    """None where `name` loads, else why not."""
    try:
        backend(name)
    except BackendUnavailable as e:
        return str(e)
    return None
