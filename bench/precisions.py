"""The benchmark matrix's precisions: which each implementation is timed in on each device (on cuda, as its framework
offers them; float64 and float32 on cpu), and the dtype each stores its arrays in. Re-exported by bench/cases.py."""

from __future__ import annotations

FRAMEWORK = {"numpy": "numpy", "torch": "torch", "tensorflow": "tensorflow", "jax": "jax", "torch_nn": "torch",
             "keras": "keras", "flax": "flax", "onnxruntime": "onnxruntime"}  # fmt: skip
"""implementation -> the framework it runs on (a cuda precision is the framework's)."""

STORAGE = {"float64": "float64", "float32": "float32", "tf32": "float32", "bfloat16": "bfloat16", "float16": "float16"}
"""precision -> storage dtype. tf32 stores float32 and rounds matmul inputs to 10-bit mantissas."""
CUDA_PRECISIONS = {
    "torch": ("float64", "float32", "tf32", "bfloat16", "float16"),
    "tensorflow": ("float64", "float32", "tf32", "bfloat16", "float16"),
    "keras": ("float64", "float32", "tf32", "bfloat16", "float16"),
    "jax": ("float64", "float32", "bfloat16", "float16"),  # float32 matmuls at "highest" (impls.frameworks): no TF32 row
    "flax": ("float64", "float32", "bfloat16", "float16"),
    "onnxruntime": ("float32",),  # CUDAExecutionProvider, where onnxruntime-gpu is installed
}
CPU_PRECISIONS = ("float64", "float32")


def precisions(impl: str, device: str) -> tuple[str, ...]:
    if device == "cpu":
        return CPU_PRECISIONS
    return CUDA_PRECISIONS.get(FRAMEWORK[impl], ())
