"""class_token and position_embedding (issue 25) from ONNX: not read yet (absent). An exported ViT's Expand + Concat
of an initializer and its Add of a (1, T, D) initializer are left; its attention imports (attention.py)."""

from __future__ import annotations

from .context import REGISTRY

REGISTRY.absent("class_token", "not read from ONNX yet (an initializer Expanded over the batch and Concatenated "
                               "before the sequence)")  # fmt: skip
REGISTRY.absent("position_embedding", "not read from ONNX yet (an Add of a (1, T, D) initializer to a sequence: "
                                      "ONNX does not say it is trainable)")  # fmt: skip
