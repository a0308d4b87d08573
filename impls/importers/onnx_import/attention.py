"""The ONNX importer and attention (issue 25): not read yet. torch.onnx writes nn.MultiheadAttention as a
MatMul / Reshape / Transpose / Softmax decomposition (the ONNX port writes the same shape of graph) and opset 23 has
an Attention op; matching either into multi_head_attention is issue 25's remaining importer work."""

from __future__ import annotations

from .context import REGISTRY

REGISTRY.absent("multi_head_attention", "the ONNX importer does not read attention yet: neither torch.onnx's "
                "MatMul/Softmax decomposition nor opset 23's Attention op is matched (a graph holding one is refused "
                "at its first unread node)")
