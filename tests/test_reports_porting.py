"""The porting report renders measured rows (synthetic here; verify/test_onnx_export.py measures the real ones):
every exporter and model is a row, the bar's verdict follows the errors, an unavailable exporter says why, and the
restated bar is the tolerance table's."""

from __future__ import annotations

from impls.contract.tolerance import tolerance
from reports import porting

FACTS = {"opset": 20, "operators": ["GRU", "Gemm"], "loops": 0, "transposes": [[1, 0, 2]],
         "input": {"name": "x", "shape": [2, 100, 64]},
         "gru_nodes": [{"linear_before_reset": 1, "layout": 0, "direction": "forward", "hidden_size": 128,
                        "gate_order": "z, r, h (the canonical weights exactly)"}]}  # fmt: skip


def test_rows_render_with_verdicts_and_reasons():
    rows = [
        {"exporter": "torch-dynamo", "model": "seed_gru_model", "facts": FACTS, "err_vs_source": 3e-8,
         "err_vs_reference": 5e-8, "planted": {"linear_before_reset": 0, "err_vs_reference": 0.14}},
        {"exporter": "torch-dynamo", "model": "seed_cnn_model", "facts": FACTS | {"gru_nodes": []},
         "err_vs_source": 3e-4, "err_vs_reference": 1e-7},
        {"exporter": "keras-tf2onnx", "model": "seed_gru_model", "unavailable": "ImportError: no tf2onnx"},
    ]  # fmt: skip
    df = porting.frame(rows)
    assert list(df["at the bar"]) == ["yes", "NO", "-"]
    assert "linear_before_reset 1" in df["GRU as exported"][0] and df["gate order"][0].startswith("z, r, h")
    assert df["planted wrong linear_before_reset"][0] == "0: 0.14 off, caught"
    assert "no tf2onnx" in df["GRU as exported"][2]
    text = porting.render(rows, "python -m reports porting")
    assert text.startswith("# Porting") and "python -m reports porting" in text and text.count("\n| ") >= 3


def test_the_restated_bar_is_the_tables():
    assert porting.BAR == tolerance("float32")
