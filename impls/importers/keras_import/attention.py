"""keras.layers.MultiHeadAttention (issue 25): `mha(query, value)` or `mha(query, value, key)`, one
multi_head_attention layer reading them in that order (self-attention `mha(x, x)` reads x twice).

Its variables are the description's layout: query/key/value kernels (E, H, d) and biases (H, d), the output kernel
(H, dv, Eo) and bias (Eo,); key_dim and value_dim are per head, as the description's. The key bias is dropped:
softmax ignores it exactly (the notes say so). Refused, naming the layer: attention_axes other than the sequence's,
a kernel over more than one output axis (output_shape a tuple), an explicit attention_mask / query_mask / value_mask /
key_mask, return_attention_scores, use_gate, a sliding window; use_causal_mask=True is the description's causal. A
padding mask from an Embedding(mask_zero=True) reaching the layer (Keras reads the tensors' own masks: no call
argument, or value_mask= given as the value's own mask, as the Keras port writes it) is the description's padding
mask; the walker checks it reaches the layer in the description too.
Dropout is the identity at inference.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .context import REGISTRY, Context, Converted, keras

L = keras.layers
_ALLOWED_KWARGS = {"use_causal_mask", "training", "return_attention_scores"}


def _kwargs(c: Context) -> dict[str, Any]:
    return dict(c.node.arguments.kwargs) if c.node is not None else {}


def _ids_not_zero(t: Any) -> bool:
    """A mask computed as `ids != 0` (keras.ops.not_equal(x, 0): Embedding(mask_zero=True)'s own compute_mask), or
    Keras' merge of such masks (an Add's logical_or): True at the valid steps, the description's polarity."""
    hist = getattr(t, "_keras_history", None)
    op = type(hist[0]).__name__ if hist is not None else None
    if op not in ("NotEqual", "LogicalOr", "LogicalAnd"):
        return False
    a = hist[0]._inbound_nodes[hist[1]].arguments.args
    if op != "NotEqual":
        return len(a) == 2 and all(_ids_not_zero(u) for u in a)
    return len(a) == 2 and isinstance(a[0], keras.KerasTensor) and not isinstance(a[1], keras.KerasTensor) and a[1] == 0


@REGISTRY.register(L.MultiHeadAttention, kinds=("multi_head_attention",), merge=True)
def _mha(c: Context) -> Converted:
    cfg = c.config
    kwargs = _kwargs(c)
    args = list(c.node.arguments.args) if c.node is not None else []
    own = getattr(args[1], "_keras_mask", None) if len(args) > 1 else None
    vm = kwargs.get("value_mask")
    if vm is not None and (vm is own or _ids_not_zero(vm)):  # the value's own padding mask, given explicitly (as the
        kwargs.pop("value_mask")  # Keras port writes it): the description's (the walker checks its source)
    bad = sorted(k for k, v in kwargs.items() if k not in _ALLOWED_KWARGS and v is not None)
    if bad:
        raise c.refuse(f"it is called with {bad}: explicit masks are not imported; the description's attention takes "
                       "use_causal_mask and the padding mask its inputs carry")  # fmt: skip
    if kwargs.get("return_attention_scores"):
        raise c.refuse("return_attention_scores=True: the description's attention gives its output only")
    if cfg.get("attention_axes") not in (None, [1], (1,), 1):
        raise c.refuse(f"attention_axes={cfg['attention_axes']!r}: only attention over the sequence axis imports")
    if cfg.get("use_gate") or cfg.get("sliding_window") is not None:
        raise c.refuse("use_gate / sliding_window: not in the description's attention")
    out_shape = cfg.get("output_shape")
    if isinstance(out_shape, (list, tuple)):
        if len(out_shape) != 1:
            raise c.refuse(f"output_shape={out_shape!r}: the description's attention outputs one feature axis")
        out_shape = out_shape[0]
    n_in = len([a for a in args if isinstance(a, keras.KerasTensor)]) + (kwargs.get("key") is not None)
    if n_in not in (2, 3):
        raise c.refuse(f"it reads {n_in} tensors: (query, value) or (query, value, key)")
    m = c.layer
    w: dict[str, np.ndarray] = {}
    for name, dense in (("query", m._query_dense), ("key", m._key_dense), ("value", m._value_dense),
                        ("output", m._output_dense)):  # fmt: skip
        w[f"{name}_kernel"] = np.asarray(dense.kernel)
        if cfg["use_bias"] and name != "key":
            w[f"{name}_bias"] = np.asarray(dense.bias)
    if cfg["use_bias"]:
        c.notes.append(f"{m.name}: Keras' key bias is dropped: softmax ignores it exactly")
    opts = {"num_heads": int(cfg["num_heads"]), "key_dim": int(cfg["key_dim"]),
            "value_dim": int(cfg.get("value_dim") or cfg["key_dim"]), "use_bias": bool(cfg["use_bias"]),
            "causal": bool(kwargs.get("use_causal_mask", False))}  # fmt: skip
    if out_shape is not None:
        opts["output_dim"] = int(out_shape)
    return "multi_head_attention", opts, w


__all__: list[str] = []
