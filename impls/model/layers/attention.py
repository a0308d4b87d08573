"""Multi-head attention (issue 25): scaled dot-product attention of several heads, with input and output projections.

Inputs (a layer that reads several tensors, like add): (query, value) or (query, value, key), Keras' call order;
key is value where only two are given. Self-attention reads one tensor twice: inputs (x, x). Each is (B, T, E).

Canonical weights, Keras' MultiHeadAttention layout (one kernel per projection, the heads an axis of their own):

    query_kernel (Eq, H, dk)   query_bias (H, dk)        q = x_q . query_kernel + query_bias     (B, Tq, H, dk)
    key_kernel   (Ek, H, dk)                             k = x_k . key_kernel                    (B, Tk, H, dk)
    value_kernel (Ev, H, dv)   value_bias (H, dv)        v = x_v . value_kernel + value_bias     (B, Tk, H, dv)
    output_kernel (H, dv, Eo)  output_bias (Eo,)         y = concat_heads(softmax(q k^T / sqrt(dk)) v) . output_kernel + output_bias

No key bias: softmax ignores it exactly (it adds q . b_k to every score of a query's row, masked ones stay -inf),
so its gradient is zero in every framework and no step ever moves it. The importers drop the source's (the function
is unchanged; the certificate's notes say so), the ports write zeros where their layer holds one.

`key_dim` (dk) and `value_dim` (dv, default dk) are per head, Keras' convention; torch's nn.MultiheadAttention has
dk = dv = embed_dim / num_heads and packs q, k, v into one in_proj_weight (3E, E) in that order, rows head-major
(impls/convert/attention.py converts both ways). The scale 1 / sqrt(dk) multiplies the queries once (torch's and
Keras' own order). `use_bias` False: no bias anywhere (torch's bias=False, Keras' use_bias=False).

Masks: `causal` (query i attends keys j <= i); and the padding mask: where the inputs carry one (they all read the same
padded sequence: self-attention on an embedding with mask_zero), keys at padded steps get weight 0 (torch's
key_padding_mask, True = ignore; Keras' attention_mask / value mask, True = attend: the importers translate). The
output carries the mask on; a padded query position's output is the attention over the valid keys (defined, but a
source may compute something else there: Keras also masks the query's row, torch's nested-tensor fast path writes
zeros), so comparisons read only valid positions. A query with no key to attend cannot arise (post-padded rows have
length >= 1 and key 0 is always causal-visible).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ...contract import formulas
from ...primitives import numpy_attn
from ...primitives import numpy_impl as ref
from ..errors import ModelError, ShapeError
from .base import LayerSpec, flag, positive_int

WEIGHTS = ("query", "key", "value")


class MultiHeadAttention(LayerSpec):
    KIND = "multi_head_attention"
    ARITY = 0
    KEEPS_MASK = True
    OPS = ("dense", "reshape", "transpose", "matmul", "softmax", "mask_scores")
    REQUIRED = ("num_heads", "key_dim")
    DEFAULTS: ClassVar[dict] = {"value_dim": None, "output_dim": None, "use_bias": True, "causal": False}

    def validate(self, opts):
        opts["num_heads"] = positive_int(self.KIND, "num_heads", opts["num_heads"])
        opts["key_dim"] = positive_int(self.KIND, "key_dim", opts["key_dim"])
        for k in ("value_dim", "output_dim"):
            if opts[k] is not None:
                opts[k] = positive_int(self.KIND, k, opts[k])
        opts["use_bias"] = flag(self.KIND, "use_bias", opts["use_bias"])
        opts["causal"] = flag(self.KIND, "causal", opts["causal"])
        return opts

    def _dims(self, opts, in_shapes):
        if len(in_shapes) not in (2, 3):
            raise ModelError(f"{self.KIND} reads (query, value) or (query, value, key), got {len(in_shapes)} tensors")
        q, v = in_shapes[0], in_shapes[1]
        k = in_shapes[2] if len(in_shapes) == 3 else v
        for name, s in (("query", q), ("value", v), ("key", k)):
            if len(s) != 3:
                raise ShapeError(f"{self.KIND}: the {name} must be (B, T, E), got {tuple(s)}")
        if not q[0] == k[0] == v[0]:
            raise ShapeError(f"{self.KIND}: query, value and key differ in batch: {tuple(q)}, {tuple(v)}, {tuple(k)}")
        if k[1] != v[1]:
            raise ShapeError(f"{self.KIND}: key and value need one length, got {tuple(k)} and {tuple(v)}")
        dk = opts["key_dim"]
        dv = opts["value_dim"] or dk
        return q, k, v, opts["num_heads"], dk, dv, opts["output_dim"] or q[-1]

    def output_shape(self, opts, in_shapes):
        q, _, _, _, _, _, eo = self._dims(opts, in_shapes)
        return (q[0], q[1], eo)

    def weight_shapes(self, opts, in_shapes):
        q, k, v, H, dk, dv, eo = self._dims(opts, in_shapes)
        shapes = {}
        for name, e, d in (("query", q[-1], dk), ("key", k[-1], dk), ("value", v[-1], dv)):
            shapes[f"{name}_kernel"] = (e, H, d)
            if opts["use_bias"] and name != "key":
                shapes[f"{name}_bias"] = (H, d)
        shapes["output_kernel"] = (H, dv, eo)
        if opts["use_bias"]:
            shapes["output_bias"] = (eo,)
        return shapes

    def init(self, opts, in_shapes, seed, dtype="float64"):
        g = np.random.default_rng(seed)
        out = {}
        for i, (name, shape) in enumerate(self.weight_shapes(opts, in_shapes).items()):
            fan = shape[0] if name != "output_kernel" else shape[0] * shape[1]
            s = (1.5 if name.endswith("kernel") else 0.5) / np.sqrt(fan)
            out[name] = (g.uniform(-s, s, shape) + (0.1 * s if i % 2 == 0 else -0.05 * s)).astype(dtype)
        return out

    def flops(self, opts, in_shapes):
        q, k, v, H, dk, dv, eo = self._dims(opts, in_shapes)
        B, tq, tk = q[0], q[1], k[1]
        return (formulas.dense_flops(B * tq, q[-1], H * dk) + formulas.dense_flops(B * tk, k[-1], H * dk)
                + formulas.dense_flops(B * tk, v[-1], H * dv) + formulas.dense_flops(B * H * tq, dk, tk)
                + formulas.dense_flops(B * H * tq, tk, dv) + formulas.dense_flops(B * tq, H * dv, eo))

    def op_weights(self, opts, w):
        """The op contract always takes biases: zeros for the key's, and for every one without them (use_bias
        False); their gradients are no parameter's."""
        out = dict(w)
        for name in WEIGHTS:
            if name == "key" or not opts["use_bias"]:
                kern = np.asarray(w[f"{name}_kernel"])
                out[f"{name}_bias"] = np.zeros(kern.shape[1:], kern.dtype)
        if not opts["use_bias"]:
            ok = np.asarray(w["output_kernel"])
            out["output_bias"] = np.zeros(ok.shape[-1:], ok.dtype)
        return out

    # ------------------------------------------------------------------ forward over an op-contract backend

    @staticmethod
    def _heads(ops, x, kernel, bias):
        """x (B, T, E) . kernel (E, H, d) + bias (H, d) -> (B, H, T, d)."""
        e, h, d = (int(n) for n in kernel.shape)
        b, t = int(x.shape[0]), int(x.shape[1])
        y = ops.dense(x, ops.reshape(kernel, (e, h * d)), ops.reshape(bias, (h * d,)))
        return ops.transpose(ops.reshape(y, (b, t, h, d)), (0, 2, 1, 3))

    def forward(self, ops, xs, opts, w):
        return self.forward_masked(ops, xs, None, opts, w)[0]

    def forward_masked(self, ops, xs, mask, opts, w):
        xq, xv = xs[0], xs[1]
        xk = xs[2] if len(xs) == 3 else xv
        q = self._heads(ops, xq, w["query_kernel"], w["query_bias"]) * float(1.0 / np.sqrt(opts["key_dim"]))  # weakly typed
        k = self._heads(ops, xk, w["key_kernel"], w["key_bias"])
        v = self._heads(ops, xv, w["value_kernel"], w["value_bias"])
        s = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))  # (B, H, Tq, Tk)
        if mask is not None or opts["causal"]:
            s = ops.mask_scores(s, mask, opts["causal"])
        o = ops.matmul(ops.softmax(s, -1), v)  # (B, H, Tq, dv)
        h, dv, eo = (int(n) for n in w["output_kernel"].shape)
        b, tq = int(xq.shape[0]), int(xq.shape[1])
        o = ops.reshape(ops.transpose(o, (0, 2, 1, 3)), (b, tq, h * dv))
        return ops.dense(o, ops.reshape(w["output_kernel"], (h * dv, eo)), w["output_bias"]), mask

    # ------------------------------------------------------------------ the NumPy reference's backward

    def vjp(self, xs, opts, w, dy):
        return self.vjp_masked(xs, None, opts, w, dy)

    def vjp_masked(self, xs, mask, opts, w, dy):
        w = self.op_weights(opts, w)
        xq, xv = xs[0], xs[1]
        xk = xs[2] if len(xs) == 3 else xv
        scale = 1.0 / np.sqrt(opts["key_dim"])
        qh = self._heads(ref, xq, w["query_kernel"], w["query_bias"])
        kh = self._heads(ref, xk, w["key_kernel"], w["key_bias"])
        vh = self._heads(ref, xv, w["value_kernel"], w["value_bias"])
        s = np.matmul(qh * scale, np.swapaxes(kh, -1, -2))
        if mask is not None or opts["causal"]:
            s = numpy_attn.mask_scores(s, mask, opts["causal"])
        a = ref.softmax(s, -1)
        oh = np.matmul(a, vh)
        h, dv, eo = w["output_kernel"].shape
        b, tq = xq.shape[:2]
        o = np.transpose(oh, (0, 2, 1, 3)).reshape(b, tq, h * dv)
        wo = w["output_kernel"].reshape(h * dv, eo)
        grads = {"output_kernel": np.einsum("bti,bto->io", o, dy).reshape(h, dv, eo), "output_bias": dy.sum(axis=(0, 1))}
        doh = np.transpose((dy @ wo.T).reshape(b, tq, h, dv), (0, 2, 1, 3))
        da = np.matmul(doh, np.swapaxes(vh, -1, -2))
        dvh = np.matmul(np.swapaxes(a, -1, -2), doh)
        ds = ref.softmax_vjp(a, da, -1)  # zero where masked: a is 0 there
        dqh = np.matmul(ds, kh) * scale
        dkh = np.matmul(np.swapaxes(ds, -1, -2), qh * scale)
        dx = {}
        for name, x, dh in (("query", xq, dqh), ("key", xk, dkh), ("value", xv, dvh)):
            kern = w[f"{name}_kernel"]
            e, hh, d = kern.shape
            d2 = np.transpose(dh, (0, 2, 1, 3)).reshape(x.shape[0], x.shape[1], hh * d)
            grads[f"{name}_kernel"] = np.einsum("bte,bto->eo", x, d2).reshape(e, hh, d)
            grads[f"{name}_bias"] = d2.sum(axis=(0, 1)).reshape(hh, d)
            dx[name] = d2 @ kern.reshape(e, hh * d).T
        grads.pop("key_bias")
        if not opts["use_bias"]:
            grads = {k: g for k, g in grads.items() if not k.endswith("_bias")}
        gx = [dx["query"], dx["value"]] if len(xs) == 2 else [dx["query"], dx["value"], dx["key"]]
        if len(xs) == 2:
            gx[1] = gx[1] + dx["key"]
        return gx, grads


SPEC = MultiHeadAttention()

__all__ = ["SPEC", "WEIGHTS", "MultiHeadAttention"]
