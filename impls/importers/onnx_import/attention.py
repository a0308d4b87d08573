"""The onnx importer's attention (issue 25)."""

from __future__ import annotations

from .context import REGISTRY

REGISTRY.absent("multi_head_attention", "not imported yet: issue 25's importers come after the kind (the onnx "
                "importer of attention is the next step)")
