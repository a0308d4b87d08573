"""What the certificate says about the model and the machine: its layers, counts and versions, and the peak memory."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import platform
import resource
from typing import Any

import numpy as np

from impls import frameworks
from impls.model.description import Model

VERSIONS = ("torch", "tensorflow", "keras", "jax", "flax", "optax", "onnx", "onnxruntime")


def versions() -> dict[str, str | None]:
    import importlib.metadata as md

    def mine() -> str | None:
        try:
            return md.version("nnparity")
        except md.PackageNotFoundError:
            return None

    return {"python": platform.python_version(), "numpy": np.__version__, "nnparity": mine(),
            **{name: frameworks.version(name) for name in VERSIONS}}  # fmt: skip


def model_section(model: Model, batch: int) -> dict[str, Any]:
    """The model's counts and, per layer, its kind, options, output shape, parameters and `inputs`: the positions of
    the layers it reads (-1: the model's input), which the certificate's growth of the error follows."""
    shapes = model.shapes(batch)
    return {"name": model.name, "source": model.source, "input_shape": [batch, *model.input_shape],
            "input_dtype": model.input_dtype, "boundary": model.boundary, "parameters": model.param_count(),
            "flops": model.flops(batch),
            "layers": [{"index": i, "name": la.name, "kind": la.kind, "options": dict(la.options),
                        "output_shape": list(shapes[i + 1]), "parameters": int(sum(np.size(w) for w in la.weights.values())),
                        "inputs": list(model.source_indices(i))}
                       for i, la in enumerate(model.layers)]}  # fmt: skip


def peak_memory(together_gib: float | None = None, every_s: float | None = None) -> dict[str, float]:
    """The peak resident memory of this process and of the worker processes it waited for, each its own peak
    (getrusage), in GiB; with a worker, also the most the two held at one moment (sampled: worker.Worker)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    return {"peak_rss_gib": round(own, 3), "peak_rss_children_gib": round(children, 3),
            **({"peak_rss_together_gib": round(together_gib, 3), "together_sampled_s": every_s}
               if together_gib else {})}  # fmt: skip


RELEASE_FROM_BYTES = 256 * 2**20
"""The float64 bytes of a model's weights and its reference's every-layer outputs from which a voice's memory is
worth giving back after it (resnet50 at 3,3,224,224: 0.84 GiB of outputs; vgg11: 1.0 GiB of weights); below it a
gc.collect per voice costs time and no bar is near (`worth_releasing`)."""


ONE_PROCESS_FROM_BYTES = 512 * 2**20
"""From this size (`model_bytes`) certify computes every voice in one process: the worker holds its own reference and
builds, and the two processes' peaks meet. torchvision resnet50 at 3,3,224,224 (1.04 GiB): two processes 201.8 s and
11.46 GiB at once, one 227.0 s and 9.45 GiB (bar 12 GiB); resnet18 at 3,3,64,64 (0.12 GiB) keeps two."""


def model_bytes(model: Model, outs: list) -> int:
    """A model's size as certify holds it many times over: its weights in float64 (each voice builds them in two
    dtypes, and its gradients and training step hold more of the same size) and its reference's every-layer outputs."""
    weights = 8 * sum(int(np.size(w)) for la in model.layers for w in la.weights.values())
    return weights + sum(getattr(o, "nbytes", 0) for o in outs)


def worth_releasing(model: Model, outs: list) -> bool:
    """Whether a model is large enough for release_memory after each voice."""
    return model_bytes(model, outs) >= RELEASE_FROM_BYTES


def release_memory() -> None:
    """Give back to the system what a finished section freed: collect cycles (a framework's graph holds its arrays
    in them), then glibc's malloc_trim, since freed heap memory otherwise stays resident, and a large model's next
    section would stack its peak on the last one's. Measured on torchvision resnet50 at 3,3,224,224: see DESIGN.md.
    Does nothing more than gc.collect() where the C library has no malloc_trim (not glibc)."""
    gc.collect()
    if _TRIM is not None:
        _TRIM(0)


def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


_TRIM = _malloc_trim()

__all__ = ["ONE_PROCESS_FROM_BYTES", "RELEASE_FROM_BYTES", "VERSIONS", "model_bytes", "model_section", "peak_memory",
           "release_memory", "versions", "worth_releasing"]
