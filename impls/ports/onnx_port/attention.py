"""The onnx port's multi_head_attention (issue 25)."""

from __future__ import annotations

from .builder import EMITTERS

EMITTERS.refuse("multi_head_attention", "not written yet: issue 25's ports come after the kind (the onnx port of "
                "attention is the next step); the primitives' voices compute it")
