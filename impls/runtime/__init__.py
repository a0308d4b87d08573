"""Voices that run ONNX graphs: ort_impl (ONNX Runtime on graphs built by onnx_graphs from canonical weights),
onnx_export (the seed models through the frameworks' ONNX exporters) and onnx_ref (ONNX's reference evaluator)."""
