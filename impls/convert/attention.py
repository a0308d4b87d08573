"""multi_head_attention's weights, canonical <-> torch.nn.MultiheadAttention.

Canonical (impls/model/layers/attention.py, Keras' own layout): query_kernel (Eq, H, dk), query_bias (H, dk),
key_kernel (Ek, H, dk) (no key bias: softmax ignores it), value_kernel (Ev, H, dv), value_bias (H, dv),
output_kernel (H, dv, Eo), output_bias (Eo,).

torch: y = x W^T + b with the heads' rows head-major (row h * d + j is head h's feature j), dk = dv = E / H, E = Eq =
Eo. Where kdim == vdim == E (`_qkv_same_embed_dim`) q, k and v are PACKED into in_proj_weight (3E, E) and in_proj_bias
(3E,), in the order q, k, v; otherwise q_proj_weight (E, E), k_proj_weight (E, kdim), v_proj_weight (E, vdim) and
still one in_proj_bias (3E,). out_proj.weight (E, E), out_proj.bias (E,). bias=False drops in_proj_bias and
out_proj.bias. torch's key bias (in_proj_bias[E:2E]) is read and dropped: it changes no output.
"""

from __future__ import annotations

import numpy as np


def _heads(w_rows: np.ndarray, heads: int) -> np.ndarray:
    """torch's (H d, E) projection -> the canonical (E, H, d) kernel."""
    return np.ascontiguousarray(np.asarray(w_rows).T.reshape(w_rows.shape[1], heads, -1))


def _rows(kernel: np.ndarray) -> np.ndarray:
    """The canonical (E, H, d) kernel -> torch's (H d, E) rows."""
    e = kernel.shape[0]
    return np.ascontiguousarray(np.asarray(kernel).reshape(e, -1).T)


def mha_from_torch(state: dict, heads: int) -> dict:
    """torch's state (in_proj_weight or q/k/v_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias; biases
    absent with bias=False) -> canonical weights."""
    if "in_proj_weight" in state and state["in_proj_weight"] is not None:
        wq, wk, wv = np.split(np.asarray(state["in_proj_weight"]), 3, axis=0)  # packed: q, k, v
    else:
        wq, wk, wv = (np.asarray(state[f"{n}_proj_weight"]) for n in "qkv")
    out = {"query_kernel": _heads(wq, heads), "key_kernel": _heads(wk, heads), "value_kernel": _heads(wv, heads)}
    wo = np.asarray(state["out_proj.weight"])  # (E, H dv)
    out["output_kernel"] = np.ascontiguousarray(wo.T.reshape(heads, -1, wo.shape[0]))
    if state.get("in_proj_bias") is not None:
        bq, _, bv = np.split(np.asarray(state["in_proj_bias"]), 3)
        out["query_bias"] = bq.reshape(heads, -1).copy()
        out["value_bias"] = bv.reshape(heads, -1).copy()
        out["output_bias"] = np.asarray(state["out_proj.bias"]).copy()
    return out


def mha_to_torch(w: dict, packed: bool = True) -> dict:
    """Canonical weights -> torch's state names: in_proj_weight packed q, k, v (or q/k/v_proj_weight), in_proj_bias
    with a zero key bias, out_proj.weight / out_proj.bias."""
    rows = [_rows(w[f"{n}_kernel"]) for n in ("query", "key", "value")]
    out = {"in_proj_weight": np.concatenate(rows, axis=0)} if packed else \
        {f"{n}_proj_weight": r for n, r in zip("qkv", rows, strict=True)}  # fmt: skip
    h, dv, eo = w["output_kernel"].shape
    out["out_proj.weight"] = np.ascontiguousarray(np.asarray(w["output_kernel"]).reshape(h * dv, eo).T)
    if "query_bias" in w:
        bq = np.asarray(w["query_bias"]).reshape(-1)
        out["in_proj_bias"] = np.concatenate([bq, np.zeros_like(bq), np.asarray(w["value_bias"]).reshape(-1)])
        out["out_proj.bias"] = np.asarray(w["output_bias"]).copy()
    return out


__all__ = ["mha_from_torch", "mha_to_torch"]
