"""The gradient matrix as data: vector-Jacobian products on seeded inputs and cotangents.

Same shape as verify/cases.py (OpCase, matrix, ids such as `gru_vjp-torch-float32-reset_after-B3T5I4H6`);
`call` returns the vjp's dict of gradients. Inputs are continuous random numbers, so max_pool2d
windows have no ties and relu sees no exact zero: those conventions are tested on purpose, apart,
in verify/test_gradients.py.
"""

from __future__ import annotations

import numpy as np

from impls import GRU_VARIANTS
from impls.contract.spec import VARIANTS, init_conv, init_dense, init_gru, out_size, pair, random_array
from verify.cases import CONV_SIZES, POOL_SIZES, OpCase, _st

# --------------------------------------------------------------------------- GRU

GRU_VJP_SIZES = [  # (B, T, I, H, h0 given, dy given, dh_T given): I != H everywhere
    (3, 5, 4, 6, False, True, False),
    (1, 1, 3, 2, True, True, True),
    (2, 12, 9, 16, True, True, True),
    (2, 4, 5, 3, False, False, True),  # dy=None: only h_T is used (the seed GRU model's second layer)
]


def _gru_vjp_case(B, T, I, H, with_h0, with_dy, with_dh, variant, seed):
    def make():
        d = {"x": random_array((B, T, I), seed), "weights": init_gru(I, H, seed + 1)}
        if with_h0:
            d["h0"] = random_array((B, H), seed + 2, low=-0.8, high=0.8)
        if with_dy:
            d["dy"] = random_array((B, T, H), seed + 3)
        if with_dh:
            d["dh_T"] = random_array((B, H), seed + 4)
        return d

    label = f"B{B}T{T}I{I}H{H}" + ("-h0" if with_h0 else "") + ("" if with_dy else "-nody") + ("-dhT" if with_dh else "")
    return OpCase(
        op="gru_vjp",
        label=label,
        make=make,
        call=lambda m, a: m.gru_vjp(a["x"], a["weights"], variant, a.get("dy"), h0=a.get("h0"), dh_T=a.get("dh_T")),
        variant=variant,
        impls=tuple(i for i, vs in GRU_VARIANTS.items() if variant in vs),
    )


GRU_VJP_CASES = [_gru_vjp_case(*s, v, seed=1000 + 10 * n) for n, s in enumerate(GRU_VJP_SIZES) for v in VARIANTS]

# --------------------------------------------------------------------------- conv2d, pooling, dense, activations


def _out_hw(H, W, k, stride, padding):
    (kh, kw), (sh, sw) = pair(k, "k"), pair(stride, "stride")
    return out_size(H, kh, sh, padding), out_size(W, kw, sw, padding)


def _conv_vjp_case(B, H, W, C, KH, KW, O, stride, padding, seed):
    def make():
        k = init_conv(KH, KW, C, O, seed + 1)
        oh, ow = _out_hw(H, W, (KH, KW), stride, padding)
        return {"x": random_array((B, H, W, C), seed), "kernel": k.kernel, "bias": k.bias,
                "dy": random_array((B, oh, ow, O), seed + 2)}  # fmt: skip

    return OpCase(
        op="conv2d_vjp",
        label=f"B{B}H{H}W{W}C{C}K{KH}x{KW}O{O}-{_st(stride)}-{padding}",
        make=make,
        call=lambda m, a: m.conv2d_vjp(a["x"], a["kernel"], a["bias"], a["dy"], stride=stride, padding=padding),
    )


CONV_VJP_CASES = [_conv_vjp_case(*s, seed=1100 + 10 * n) for n, s in enumerate(CONV_SIZES)]


def _pool_vjp_case(B, H, W, C, pool, stride, padding, seed):
    def make():
        oh, ow = _out_hw(H, W, pool, stride if stride is not None else pool, padding)
        return {"x": random_array((B, H, W, C), seed), "dy": random_array((B, oh, ow, C), seed + 1)}

    p = f"p{pool}" if isinstance(pool, int) else f"p{pool[0]}x{pool[1]}"
    return OpCase(
        op="max_pool2d_vjp",
        label=f"B{B}H{H}W{W}C{C}-{p}-{_st(stride) if stride else 'sNone'}-{padding}",
        make=make,
        call=lambda m, a: m.max_pool2d_vjp(a["x"], a["dy"], pool, stride=stride, padding=padding),
    )


POOL_VJP_CASES = [_pool_vjp_case(*s, seed=1200 + 10 * n) for n, s in enumerate(POOL_SIZES)]


def _dense_vjp_case(shape, n_out, seed):
    def make():
        d = init_dense(shape[-1], n_out, seed + 1)
        return {"x": random_array(shape, seed), "kernel": d.kernel, "bias": d.bias,
                "dy": random_array((*shape[:-1], n_out), seed + 2)}  # fmt: skip

    return OpCase(
        op="dense_vjp",
        label="x" + "x".join(map(str, shape)) + f"-out{n_out}",
        make=make,
        call=lambda m, a: m.dense_vjp(a["x"], a["kernel"], a["bias"], a["dy"]),
    )


DENSE_VJP_CASES = [_dense_vjp_case((4, 7), 3, 1300), _dense_vjp_case((1, 5), 9, 1310), _dense_vjp_case((2, 3, 6), 4, 1320)]


def _relu_vjp_case(shape, seed):
    return OpCase(
        op="relu_vjp",
        label="x" + "x".join(map(str, shape)),
        make=lambda: {"x": random_array(shape, seed, low=-3.0, high=3.0), "dy": random_array(shape, seed + 1)},
        call=lambda m, a: m.relu_vjp(a["x"], a["dy"]),
    )


def _xent_case(B, K, seed, scale=3.0):
    def make():
        labels = np.random.default_rng(seed).integers(0, K, B)
        return {"logits": random_array((B, K), seed + 1, low=-scale, high=scale), "onehot": np.eye(K)[labels]}

    return OpCase(
        op="softmax_cross_entropy_vjp",
        label=f"B{B}K{K}" + (f"-scale{scale:g}" if scale != 3.0 else ""),
        make=make,
        call=lambda m, a: {
            "loss": m.softmax_cross_entropy(a["logits"], a["onehot"]),
            **m.softmax_cross_entropy_vjp(a["logits"], a["onehot"]),
        },
    )


ACT_VJP_CASES = [_relu_vjp_case((4, 9), 1400), _relu_vjp_case((2, 3, 5), 1410), _xent_case(6, 10, 1420),
                 _xent_case(3, 4, 1430, scale=30.0)]  # fmt: skip

VJP_CASES = GRU_VJP_CASES + CONV_VJP_CASES + POOL_VJP_CASES + DENSE_VJP_CASES + ACT_VJP_CASES
