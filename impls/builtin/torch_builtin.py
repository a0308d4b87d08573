"""PyTorch's built-in layers as a voice: nn.GRU, nn.Conv2d (groups, dilation), nn.MaxPool2d, nn.AvgPool2d,
nn.ConstantPad2d, nn.Linear, nn.ReLU, nn.Softmax.

Canonical weights reach the layers through impls/convert.py, applied to tensors by impls/builtin/torch_convert.py
(as gathers: any device, autograd flows through); activations change layout NHWC <-> NCHW inside each adapter.
Also here: parameter and FLOP counts of layers actually built (issue 4); the seed models and Adam training
(issue 3) live in impls/builtin/torch_models.py and are re-exported.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .. import convert, frameworks
from ..contract import models, spec
from ..contract.formulas import check_sizes
from ..contract.spec import GRUWeights
from ..primitives.torch_impl import MODES, asarray, compile, synchronize, to_numpy, torch_dtype
from .torch_convert import NCHW_TO_NHWC, NHWC_TO_NCHW, as_tensors, convert_tensors
from .torch_models import SeedCNN, SeedGRU, keras_categorical_crossentropy, train_seed_model

torch = frameworks.load("torch")
nn, F = torch.nn, torch.nn.functional

NAME = "torch_nn"
FRAMEWORK = "torch"
MODE = "eager"
SUPPORTED_VARIANTS = ("reset_after",)  # torch.nn.GRU: r multiplies (h U_h + b_hh), one form only


def check_variant(variant: str) -> str:
    spec.check_variant(variant)
    if variant not in SUPPORTED_VARIANTS:
        raise ValueError(
            f"torch.nn.GRU does not compute the GRU variant {variant!r}; supported: {', '.join(SUPPORTED_VARIANTS)} "
            f"(the 'torch' implementation from primitives computes every variant)"
        )
    return variant


# --------------------------------------------------------------------------- layers


@functools.lru_cache(maxsize=256)
def _template(kind: str, *sizes: Any) -> Any:
    """The layer for one configuration, built once on the meta device: it holds no numbers. Each call lends
    it the converted weights through torch.func.functional_call, so nothing is initialised per call."""
    if kind == "gru":
        return nn.GRU(*sizes, batch_first=True, device="meta")
    if kind == "conv2d":
        C, O, KH, KW, st, pad, dil, groups = sizes
        return nn.Conv2d(C, O, (KH, KW), stride=st, padding=pad, dilation=dil, groups=groups, device="meta")
    if kind == "dense":
        return nn.Linear(*sizes, device="meta")
    C, K = sizes  # "seed_conv1d": depthwise, one filter per channel
    return nn.Conv1d(C, C, K, groups=C, device="meta")


def _call(layer: Any, state: dict[str, Any], *args: Any) -> Any:
    return torch.func.functional_call(layer, state, args)


def _leaves(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v.detach().requires_grad_(True) for k, v in state.items()}


def _gru_state(x: Any, weights: GRUWeights) -> dict[str, Any]:
    return convert_tensors(convert.gru_to_torch, as_tensors(weights, x.dtype, x.device))


def _gru(x: Any, weights: GRUWeights, h0: Any, state: dict[str, Any]) -> tuple[Any, Any]:
    layer = _template("gru", int(weights.W.shape[0]), int(weights.U.shape[0]))
    y, h_n = _call(layer, state, x) if h0 is None else _call(layer, state, x, h0.unsqueeze(0))  # h_n (1, B, H)
    return y, h_n[0]


def gru(x: Any, weights: GRUWeights, variant: str, h0: Any = None) -> tuple[Any, Any]:
    """nn.GRU(batch_first=True): x (B, T, I) -> (y (B, T, H), h_T (B, H)). reset_after only."""
    check_variant(variant)
    spec.check_gru(x.shape, weights, None if h0 is None else h0.shape)
    return _gru(x, weights, h0, _gru_state(x, weights))


def _conv_state(x: Any, kernel: Any, bias: Any) -> dict[str, Any]:
    k, b = as_tensors((kernel, bias), x.dtype, x.device)
    return {"weight": convert_tensors(convert.hwio_to_oihw, k), "bias": b}


def _layer_padding(pads: tuple[int, int, int, int], window: tuple[int, int] | None, value: float) -> tuple[Any, tuple]:
    """The layer's own symmetric padding where it can hold the pads (at most half the window for the pools),
    else a padding layer first (nn.ConstantPad2d: asymmetric, as TensorFlow's 'same' or explicit pads)."""
    t, b, l, r = pads
    if t == b and l == r and (window is None or (2 * t <= window[0] and 2 * l <= window[1])):
        return None, (t, l)
    return nn.ConstantPad2d(convert.pads_to_torch(pads), value), (0, 0)


def _conv(x: Any, state: dict[str, Any], g: spec.ConvGeometry) -> Any:
    pre, pad = _layer_padding(g.pads, None, 0.0)
    xc = x.permute(NHWC_TO_NCHW)
    xc = xc if pre is None else pre(xc)
    layer = _template("conv2d", g.C, g.O, g.KH, g.KW, g.stride, pad, g.dilation, g.groups)
    return _call(layer, state, xc).permute(NCHW_TO_NHWC)


def conv2d(x: Any, kernel: Any, bias: Any, stride: Any = 1, padding: Any = "valid", dilation: Any = 1, groups: int = 1) -> Any:
    """nn.Conv2d(groups, dilation) on NCHW inside; symmetric pads are the layer's own padding, asymmetric
    ones (TensorFlow's 'same', explicit) an nn.ConstantPad2d before a padding=0 conv."""
    g = spec.check_conv2d(x.shape, kernel.shape, bias.shape, stride, padding, dilation, groups)
    return _conv(x, _conv_state(x, kernel, bias), g)


def max_pool2d(x: Any, pool: Any = 2, stride: Any = None, padding: Any = "valid") -> Any:
    """nn.MaxPool2d, whose own padding is -inf; pads it cannot hold go through nn.ConstantPad2d(-inf) first."""
    g = spec.check_pool2d(x.shape, pool, stride, padding)
    pre, pad = _layer_padding(g.pads, g.pool, float("-inf"))
    xc = x.permute(NHWC_TO_NCHW)
    return nn.MaxPool2d(g.pool, stride=g.stride, padding=pad)(xc if pre is None else pre(xc)).permute(NCHW_TO_NHWC)


def avg_pool2d(x: Any, pool: Any = 2, stride: Any = None, padding: Any = "valid", count_include_pad: bool = False) -> Any:
    """nn.AvgPool2d(count_include_pad=...) with its own symmetric padding where it can hold the pads. Elsewhere
    the port recipe: nn.ZeroPad2d, then AvgPool2d(count_include_pad=True) (the mean over the whole window),
    and for TensorFlow's rule (count_include_pad=False) that divided by the same pool of a padded ones mask."""
    spec.check_count_include_pad(count_include_pad)
    g = spec.check_pool2d(x.shape, pool, stride, padding, op="avg_pool2d")
    pre, pad = _layer_padding(g.pads, g.pool, 0.0)
    xc = x.permute(NHWC_TO_NCHW)
    if pre is None:
        return nn.AvgPool2d(g.pool, g.stride, pad, count_include_pad=count_include_pad)(xc).permute(NCHW_TO_NHWC)
    pool_all = nn.AvgPool2d(g.pool, g.stride, 0, count_include_pad=True)
    y = pool_all(pre(xc))
    if not count_include_pad:
        y = y / pool_all(pre(xc.new_ones((1, 1, g.H, g.W))))  # the share of each window that is input
    return y.permute(NCHW_TO_NHWC)


def _dense_state(x: Any, kernel: Any, bias: Any) -> dict[str, Any]:
    k, b = as_tensors((kernel, bias), x.dtype, x.device)
    return {"weight": convert_tensors(convert.dense_to_torch, k), "bias": b}


def dense(x: Any, kernel: Any, bias: Any) -> Any:
    """nn.Linear: x (..., in) -> (..., out)."""
    spec.check_dense(x.shape, kernel.shape, bias.shape)
    return _call(_template("dense", int(kernel.shape[0]), int(kernel.shape[1])), _dense_state(x, kernel, bias), x)


def relu(x: Any) -> Any:
    return nn.ReLU()(x)


def softmax(x: Any, axis: int = -1) -> Any:
    return nn.Softmax(dim=axis)(x)


def seed_conv1d(x: Any, w: Any, b: Any) -> Any:
    """The seed's per-channel 1-D correlation as a depthwise nn.Conv1d(C, C, K, groups=C)."""
    _, _, C, K = spec.check_seed_conv1d(x.shape, w.shape, b.shape)
    w, b = as_tensors((w, b), x.dtype, x.device)
    state = {"weight": w.T.unsqueeze(1), "bias": b}  # taps by channel (K, C) -> Conv1d's (C, 1, K)
    return _call(_template("seed_conv1d", C, K), state, x.transpose(1, 2)).transpose(1, 2)  # (B, L, C) <-> (B, C, L)


def seed_pool1d(y: Any) -> Any:
    """The seed's x_ij = max(y_ij, y_i,j+1) as nn.MaxPool1d(2, stride=1)."""
    spec.check_seed_pool1d(y.shape)
    return nn.MaxPool1d(2, stride=1)(y.transpose(1, 2)).transpose(1, 2)


# --------------------------------------------------------------------------- gradients (autograd over the layers)


def _grads(loss: Any, named: dict[str, Any]) -> dict[str, Any]:
    gs = torch.autograd.grad(loss, list(named.values()), allow_unused=True)
    return {k: (torch.zeros_like(v) if g is None else g) for (k, v), g in zip(named.items(), gs)}


def _leaf(a: Any, x: Any) -> Any:
    return asarray(a, x.dtype, x.device).requires_grad_(True)


def gru_vjp(x: Any, weights: GRUWeights, variant: str, dy: Any, h0: Any = None, dh_T: Any = None) -> dict[str, Any]:
    """Autograd through nn.GRU; weight_*_l0 / bias_*_l0 gradients back to W, U, b_x, b_h by convert.gru_from_torch."""
    check_variant(variant)
    B, _, _, H = spec.check_gru_vjp(x, weights, h0, dy, dh_T)
    xl, hl = _leaf(x, x), _leaf(x.new_zeros((B, H)) if h0 is None else h0, x)
    state = _leaves(_gru_state(x, weights))  # weight_ih_l0, ... in torch's layout and gate order
    with torch.enable_grad():
        y, h_T = _gru(xl, weights, hl, state)
        loss = (0 if dy is None else torch.sum(y * dy)) + (0 if dh_T is None else torch.sum(h_T * dh_T))
        g = _grads(loss, {"x": xl, "h0": hl, **state})
    w = convert_tensors(convert.gru_from_torch, {k: v for k, v in g.items() if k not in ("x", "h0")})
    return {"x": g["x"], "h0": g["h0"], "W": w.W, "U": w.U, "b_x": w.b_x, "b_h": w.b_h}


def conv2d_vjp(x: Any, kernel: Any, bias: Any, dy: Any, stride: Any = 1, padding: Any = "valid", dilation: Any = 1,
               groups: int = 1) -> dict[str, Any]:  # fmt: skip
    g = spec.check_conv2d(x.shape, kernel.shape, bias.shape, stride, padding, dilation, groups)
    spec.check_dy("conv2d_vjp", dy.shape, (g.B, g.OH, g.OW, g.O))
    xl, state = _leaf(x, x), _leaves(_conv_state(x, kernel, bias))
    with torch.enable_grad():
        grads = _grads(torch.sum(_conv(xl, state, g) * dy), {"x": xl, **state})
    return {"x": grads["x"], "kernel": convert_tensors(convert.oihw_to_hwio, grads["weight"]), "bias": grads["bias"]}


def max_pool2d_vjp(x: Any, dy: Any, pool: Any = 2, stride: Any = None, padding: Any = "valid") -> dict[str, Any]:
    g = spec.check_pool2d(x.shape, pool, stride, padding)
    spec.check_dy("max_pool2d_vjp", dy.shape, (g.B, g.OH, g.OW, g.C))
    xl = _leaf(x, x)
    with torch.enable_grad():
        return _grads(torch.sum(max_pool2d(xl, pool, stride, padding) * dy), {"x": xl})


def avg_pool2d_vjp(x: Any, dy: Any, pool: Any = 2, stride: Any = None, padding: Any = "valid",
                   count_include_pad: bool = False) -> dict[str, Any]:  # fmt: skip
    g = spec.check_pool2d(x.shape, pool, stride, padding, op="avg_pool2d")
    spec.check_dy("avg_pool2d_vjp", dy.shape, (g.B, g.OH, g.OW, g.C))
    xl = _leaf(x, x)
    with torch.enable_grad():
        return _grads(torch.sum(avg_pool2d(xl, pool, stride, padding, count_include_pad) * dy), {"x": xl})


def dense_vjp(x: Any, kernel: Any, bias: Any, dy: Any) -> dict[str, Any]:
    spec.check_dense(x.shape, kernel.shape, bias.shape)
    spec.check_dy("dense_vjp", dy.shape, (*x.shape[:-1], kernel.shape[1]))
    xl, state = _leaf(x, x), _leaves(_dense_state(x, kernel, bias))
    with torch.enable_grad():
        y = _call(_template("dense", int(kernel.shape[0]), int(kernel.shape[1])), state, xl)
        g = _grads(torch.sum(y * dy), {"x": xl, **state})
    return {"x": g["x"], "kernel": convert_tensors(convert.dense_from_torch, g["weight"]), "bias": g["bias"]}


def relu_vjp(x: Any, dy: Any) -> dict[str, Any]:
    spec.check_dy("relu_vjp", dy.shape, x.shape)
    xl = _leaf(x, x)
    with torch.enable_grad():
        return _grads(torch.sum(relu(xl) * dy), {"x": xl})


def _check_xent(logits: Any, onehot: Any) -> None:
    if tuple(logits.shape) != tuple(onehot.shape) or len(logits.shape) != 2:
        raise spec.ShapeError(f"softmax_cross_entropy needs logits and onehot of the same (B, classes) shape: "
                              f"logits.shape={tuple(logits.shape)}, onehot.shape={tuple(onehot.shape)}")  # fmt: skip


def softmax_cross_entropy(logits: Any, onehot: Any) -> Any:
    """nn.CrossEntropyLoss (mean over the batch) with class-probability targets."""
    _check_xent(logits, onehot)
    return nn.CrossEntropyLoss()(logits, onehot.to(logits.dtype))


def softmax_cross_entropy_vjp(logits: Any, onehot: Any) -> dict[str, Any]:
    _check_xent(logits, onehot)
    ll = _leaf(logits, logits)
    with torch.enable_grad():
        return _grads(softmax_cross_entropy(ll, onehot), {"logits": ll})


# --------------------------------------------------------------------------- counts (issue 4), from built layers


def _numel(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def gru_param_count(I: int, H: int, variant: str = "reset_after") -> int:
    """Parameters of nn.GRU(I, H): the layer exists only for reset_after."""
    check_variant(variant)
    check_sizes(I=I, H=H)
    return _numel(nn.GRU(I, H, device="meta"))


def lstm_param_count(I: int, H: int) -> int:
    check_sizes(I=I, H=H)
    return _numel(nn.LSTM(I, H, device="meta"))


def conv2d_param_count(kh: int, kw: int, c_in: int, c_out: int, groups: int = 1, bias: bool = True) -> int:
    check_sizes(kh=kh, kw=kw, c_in=c_in, c_out=c_out, groups=groups)
    return _numel(nn.Conv2d(c_in, c_out, (kh, kw), groups=groups, bias=bias, device="meta"))


def dense_param_count(n_in: int, n_out: int, bias: bool = True) -> int:
    check_sizes(n_in=n_in, n_out=n_out)
    return _numel(nn.Linear(n_in, n_out, bias=bias, device="meta"))


def seed_gru_model_param_count() -> int:
    return _numel(SeedGRU(device="meta"))


def seed_cnn_model_param_count(pools: bool = True) -> int:
    """pools=False: the same model without its two MaxPool layers, so Flatten sees 24x24x64."""
    return _numel(SeedCNN(pools=pools, device="meta"))


def _work(work: str, backward: bool = False, **sizes: Any) -> tuple[Callable, tuple]:
    """A forward (or forward+backward) of `work` at `sizes`, built on the meta device: shapes only, no math."""
    meta = {"device": "meta"}
    if work == "matmul":
        M, K, N = sizes["M"], sizes["K"], sizes["N"]
        fn, args = torch.matmul, (torch.empty(M, K, **meta), torch.empty(K, N, **meta))
    elif work == "gru":
        B, T, I, H = (sizes[k] for k in "BTIH")
        layer = nn.GRU(I, H, batch_first=True, **meta)
        fn, args = (lambda x: layer(x)[0]), (torch.empty(B, T, I, **meta),)
    elif work == "conv2d":
        B, H, W, C, KH, KW, O = (sizes[k] for k in ("B", "H", "W", "C", "KH", "KW", "O"))
        G = sizes.get("groups", 1)
        k, b = torch.empty(KH, KW, C // G, O, **meta), torch.empty(O, **meta)
        opts = {"stride": sizes.get("stride", 1), "padding": sizes.get("padding", "valid"),
                "dilation": sizes.get("dilation", 1), "groups": G}  # fmt: skip
        fn, args = (lambda x: conv2d(x, k, b, **opts)), (torch.empty(B, H, W, C, **meta),)
    elif work == "dense":
        layer = nn.Linear(sizes["n_in"], sizes["n_out"], **meta)
        fn, args = layer, (torch.empty(sizes["B"], sizes["n_in"], **meta),)
    elif work == "seed_gru_model":
        T, I = models.SEED_GRU_INPUT
        fn, args = SeedGRU(device="meta"), (torch.empty(sizes["B"], T, I, **meta),)
    elif work == "seed_cnn_model":
        fn, args = SeedCNN(device="meta"), (torch.empty(sizes["B"], *models.SEED_CNN_INPUT, **meta),)
    else:
        raise ValueError(f"unknown work {work!r}; valid: matmul, gru, conv2d, dense, seed_gru_model, seed_cnn_model")
    if not backward:
        return fn, args
    args = tuple(a.requires_grad_(True) for a in args)
    return (lambda *a: fn(*a).sum().backward()), args


def flop_count(work: str | Callable, *args: Any, backward: bool = False, **sizes: Any) -> int:
    """FLOPs as torch.utils.flop_counter.FlopCounterMode counts them: 2*m*n*k per matrix product (mm, addmm,
    bmm), 2*out*k*c_in per conv output; elementwise ops, bias adds and nonlinearities count 0.
    flop_count(fn, *args) counts the call fn(*args); flop_count("gru", B=.., T=.., I=.., H=..) builds the
    work from layers on the meta device (also matmul M,K,N; conv2d B,H,W,C,KH,KW,O[,stride,padding,dilation,groups];
    dense B,n_in,n_out; seed_gru_model B; seed_cnn_model B); backward=True counts forward + backward."""
    from torch.utils.flop_counter import FlopCounterMode

    fn, args = (work, args) if callable(work) else _work(work, backward, **sizes)
    with FlopCounterMode(display=False) as counter:
        fn(*args)
    return int(counter.get_total_flops())


__all__ = [
    "FRAMEWORK", "MODE", "MODES", "NAME", "SUPPORTED_VARIANTS", "SeedCNN", "SeedGRU", "asarray", "avg_pool2d",
    "avg_pool2d_vjp", "compile",
    "conv2d", "conv2d_param_count", "conv2d_vjp", "dense", "dense_param_count", "dense_vjp", "flop_count",
    "gru", "gru_param_count", "gru_vjp", "keras_categorical_crossentropy", "lstm_param_count", "max_pool2d",
    "max_pool2d_vjp", "relu", "relu_vjp", "seed_cnn_model_param_count", "seed_conv1d",
    "seed_gru_model_param_count", "seed_pool1d", "softmax", "softmax_cross_entropy",
    "softmax_cross_entropy_vjp", "synchronize", "to_numpy", "torch_dtype", "train_seed_model",
]  # fmt: skip
