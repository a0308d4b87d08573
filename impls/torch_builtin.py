"""PyTorch's built-in layers as a voice: nn.GRU, nn.Conv2d, nn.MaxPool2d, nn.Linear, nn.ReLU, nn.Softmax.

Canonical weights reach the layers through impls/convert.py, applied to tensors by impls/torch_convert.py
(as gathers: any device, autograd flows through); activations change layout NHWC <-> NCHW inside each adapter.
Also here: parameter and FLOP counts of layers actually built (issue 4) and Adam training (issue 3).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from . import convert, frameworks, models, spec
from .models import SeedCNNParams, SeedGRUParams
from .spec import GRUWeights
from .torch_convert import NCHW_TO_NHWC, NHWC_TO_NCHW, as_tensors, convert_tensors, load_layer
from .torch_impl import MODES, asarray, compile, synchronize, to_numpy, torch_dtype

torch = frameworks.load("torch")
nn, F = torch.nn, torch.nn.functional

NAME = "torch_nn"
FRAMEWORK = "torch"
MODE = "eager"
SUPPORTED_VARIANTS = ("reset_after",)  # torch.nn.GRU: r multiplies (h U_h + b_hh), one form only
KERAS_EPSILON = 1e-7  # keras.config.epsilon(), the clip in categorical_crossentropy


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
        C, O, KH, KW, st = sizes
        return nn.Conv2d(C, O, (KH, KW), stride=st, padding=0, device="meta")
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


def _conv(x: Any, state: dict[str, Any], geometry: tuple) -> Any:
    _, _, _, C, KH, KW, O, st, (ph0, ph1, pw0, pw1), _, _ = geometry  # spec.check_conv2d's answer
    xc = F.pad(x.permute(NHWC_TO_NCHW), (pw0, pw1, ph0, ph1))
    return _call(_template("conv2d", C, O, KH, KW, st), state, xc).permute(NCHW_TO_NHWC)


def conv2d(x: Any, kernel: Any, bias: Any, stride: Any = 1, padding: str = "valid") -> Any:
    """nn.Conv2d on NCHW inside; TensorFlow's asymmetric 'same' is an explicit F.pad before a padding=0 conv."""
    geometry = spec.check_conv2d(x.shape, kernel.shape, bias.shape, stride, padding)
    return _conv(x, _conv_state(x, kernel, bias), geometry)


def max_pool2d(x: Any, pool: Any = 2, stride: Any = None, padding: str = "valid") -> Any:
    """nn.MaxPool2d; 'same' pads with -inf first (F.pad), so padding never wins."""
    _, _, _, _, pl, st, (ph0, ph1, pw0, pw1), _, _ = spec.check_pool2d(x.shape, pool, stride, padding)
    xc = F.pad(x.permute(NHWC_TO_NCHW), (pw0, pw1, ph0, ph1), value=float("-inf"))
    return nn.MaxPool2d(pl, stride=st)(xc).permute(NCHW_TO_NHWC)


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


# --------------------------------------------------------------------------- the seed models


class SeedGRU(nn.Module):
    """GRU(128, return_sequences) -> GRU(64) -> Dense(10, softmax); state dict as convert.seed_gru_to_torch."""

    def __init__(self, input_size=models.SEED_GRU_INPUT[1], units=models.SEED_GRU_UNITS, classes=models.SEED_CLASSES, device=None, dtype=None):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.gru1 = nn.GRU(input_size, units[0], batch_first=True, **kw)
        self.gru2 = nn.GRU(units[0], units[1], batch_first=True, **kw)
        self.dense = nn.Linear(units[1], classes, **kw)
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x):  # (B, T, I) -> (B, classes) probabilities
        y1, _ = self.gru1(x)  # (B, T, units[0])
        _, h2 = self.gru2(y1)  # (1, B, units[1])
        return self.softmax(self.dense(h2[0]))

    @classmethod
    def from_params(cls, p: SeedGRUParams, dtype=None, device=None, trainable=False) -> SeedGRU:
        p = as_tensors(p, dtype, device)
        x = p.dense.bias
        m = cls(int(p.gru1.W.shape[0]), (int(p.gru1.U.shape[0]), int(p.gru2.U.shape[0])), int(x.shape[0]), "meta", x.dtype)
        return load_layer(m, convert_tensors(convert.seed_gru_to_torch, p), trainable)


class SeedCNN(nn.Module):
    """Conv(32,3x3,relu) -> MaxPool 2 -> Conv(64,3x3,relu) -> MaxPool 2 -> Flatten (NCHW) -> Dense(128,relu)
    -> Dense(10, softmax); input NHWC. State dict as convert.seed_cnn_to_torch (which permutes dense1's rows).
    pools=False leaves out both MaxPool layers (for the parameter-count comparison)."""

    def __init__(self, c_in=models.SEED_CNN_INPUT[2], filters=models.SEED_CNN_FILTERS, flat_features=None, dense_units=models.SEED_DENSE_UNITS,
                 classes=models.SEED_CLASSES, pools=True, device=None, dtype=None):  # fmt: skip
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        if flat_features is None:
            flat_features = int(np.prod(_cnn_flat_shape(models.SEED_CNN_INPUT, filters, pools)))
        k, pool = models.SEED_CNN_KERNEL, models.SEED_CNN_POOL
        self.conv1 = nn.Conv2d(c_in, filters[0], k, **kw)
        self.pool1 = nn.MaxPool2d(pool) if pools else nn.Identity()
        self.conv2 = nn.Conv2d(filters[0], filters[1], k, **kw)
        self.pool2 = nn.MaxPool2d(pool) if pools else nn.Identity()
        self.flatten = nn.Flatten()  # NCHW: (c, h, w) order
        self.dense1 = nn.Linear(flat_features, dense_units, **kw)
        self.dense2 = nn.Linear(dense_units, classes, **kw)
        self.relu = nn.ReLU()
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x):  # (B, H, W, C) -> (B, classes) probabilities
        a = x.permute(NHWC_TO_NCHW)
        a = self.pool1(self.relu(self.conv1(a)))
        a = self.pool2(self.relu(self.conv2(a)))
        a = self.relu(self.dense1(self.flatten(a)))
        return self.softmax(self.dense2(a))

    @classmethod
    def from_params(cls, p: SeedCNNParams, dtype=None, device=None, trainable=False, image=None) -> SeedCNN:
        """image (H, W) of the inputs fixes the (h, w, c) map that Flatten sees; None: the map is square."""
        p = as_tensors(p, dtype, device)
        k1, k2, d1, d2 = p.conv1.kernel, p.conv2.kernel, p.dense1.kernel, p.dense2.kernel
        filters = (int(k1.shape[3]), int(k2.shape[3]))
        fs = None if image is None else models.cnn_feature_shape((image[0], image[1], int(k1.shape[2])), filters)
        m = cls(int(k1.shape[2]), filters, int(d1.shape[0]), int(d1.shape[1]), int(d2.shape[1]), True, "meta", d1.dtype)
        return load_layer(m, convert_tensors(convert.seed_cnn_to_torch, p, feature_shape=fs), trainable)


def _cnn_flat_shape(image, filters, pools: bool) -> tuple[int, int, int]:
    if pools:
        return models.cnn_feature_shape(image, filters)
    side = [image[0], image[1]]
    for _ in filters:
        side = [spec.out_size(s, models.SEED_CNN_KERNEL, 1, "valid") for s in side]
    return side[0], side[1], filters[-1]


def _check_input(x: Any, model: Any) -> Any:
    p = next(model.parameters())
    if x.dtype != p.dtype or x.device != p.device:
        raise ValueError(f"input dtype/device {x.dtype}/{x.device} != the model's {p.dtype}/{p.device}; pass dtype=/device=")
    return model(x)


def seed_gru_model(params: SeedGRUParams, variant: str = models.SEED_GRU_VARIANT, dtype: Any = None, device: Any = None) -> Callable:
    """SeedGRU built from canonical params. Returns forward(x (B, T, I)) -> probabilities."""
    check_variant(variant)
    model = SeedGRU.from_params(params, dtype, device)
    return lambda x: _check_input(x, model)


def seed_cnn_model(params: SeedCNNParams, dtype: Any = None, device: Any = None) -> Callable:
    """SeedCNN built from canonical params. Returns forward(x NHWC) -> probabilities. The NCHW flatten
    order depends on the image size, so a model is built per input (H, W), on first sight."""
    p = as_tensors(params, dtype, device)
    built: dict[tuple[int, int], SeedCNN] = {}

    def forward(x):
        image = (int(x.shape[1]), int(x.shape[2]))
        if image not in built:
            built[image] = SeedCNN.from_params(p, image=image)
        return _check_input(x, built[image])

    return forward


# --------------------------------------------------------------------------- gradients (autograd over the layers)


def _grads(loss: Any, named: dict[str, Any]) -> dict[str, Any]:
    gs = torch.autograd.grad(loss, list(named.values()), allow_unused=True)
    return {k: (torch.zeros_like(v) if g is None else g) for (k, v), g in zip(named.items(), gs)}


def _leaf(a: Any, x: Any) -> Any:
    return asarray(a, x.dtype, x.device).requires_grad_(True)


def gru_vjp(x: Any, weights: GRUWeights, variant: str, dy: Any, h0: Any = None, dh_T: Any = None) -> dict[str, Any]:
    """Autograd through nn.GRU; weight_*_l0 / bias_*_l0 gradients back to W, U, b_x, b_h by convert.gru_from_torch."""
    check_variant(variant)
    B, T, _, H = spec.check_gru(x.shape, weights, None if h0 is None else h0.shape)
    if dy is None and dh_T is None:
        raise ValueError("gru_vjp needs dy, dh_T or both; got neither (dy=None, dh_T=None)")
    if dy is not None:
        spec.check_dy("gru_vjp", dy.shape, (B, T, H))
    if dh_T is not None:
        spec.check_dy("gru_vjp (dh_T)", dh_T.shape, (B, H))
    xl, hl = _leaf(x, x), _leaf(x.new_zeros((B, H)) if h0 is None else h0, x)
    state = _leaves(_gru_state(x, weights))  # weight_ih_l0, ... in torch's layout and gate order
    with torch.enable_grad():
        y, h_T = _gru(xl, weights, hl, state)
        loss = (0 if dy is None else torch.sum(y * dy)) + (0 if dh_T is None else torch.sum(h_T * dh_T))
        g = _grads(loss, {"x": xl, "h0": hl, **state})
    w = convert_tensors(convert.gru_from_torch, {k: v for k, v in g.items() if k not in ("x", "h0")})
    return {"x": g["x"], "h0": g["h0"], "W": w.W, "U": w.U, "b_x": w.b_x, "b_h": w.b_h}


def conv2d_vjp(x: Any, kernel: Any, bias: Any, dy: Any, stride: Any = 1, padding: str = "valid") -> dict[str, Any]:
    geometry = spec.check_conv2d(x.shape, kernel.shape, bias.shape, stride, padding)
    B, _, _, _, _, _, O, _, _, OH, OW = geometry
    spec.check_dy("conv2d_vjp", dy.shape, (B, OH, OW, O))
    xl, state = _leaf(x, x), _leaves(_conv_state(x, kernel, bias))
    with torch.enable_grad():
        g = _grads(torch.sum(_conv(xl, state, geometry) * dy), {"x": xl, **state})
    return {"x": g["x"], "kernel": convert_tensors(convert.oihw_to_hwio, g["weight"]), "bias": g["bias"]}


def max_pool2d_vjp(x: Any, dy: Any, pool: Any = 2, stride: Any = None, padding: str = "valid") -> dict[str, Any]:
    B, _, _, C, _, _, _, OH, OW = spec.check_pool2d(x.shape, pool, stride, padding)
    spec.check_dy("max_pool2d_vjp", dy.shape, (B, OH, OW, C))
    xl = _leaf(x, x)
    with torch.enable_grad():
        return _grads(torch.sum(max_pool2d(xl, pool, stride, padding) * dy), {"x": xl})


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
    return _numel(nn.GRU(I, H, device="meta"))


def lstm_param_count(I: int, H: int) -> int:
    return _numel(nn.LSTM(I, H, device="meta"))


def conv2d_param_count(kh: int, kw: int, c_in: int, c_out: int, groups: int = 1, bias: bool = True) -> int:
    return _numel(nn.Conv2d(c_in, c_out, (kh, kw), groups=groups, bias=bias, device="meta"))


def dense_param_count(n_in: int, n_out: int, bias: bool = True) -> int:
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
        k, b = torch.empty(KH, KW, C, O, **meta), torch.empty(O, **meta)
        fn, args = (lambda x: conv2d(x, k, b, sizes.get("stride", 1), sizes.get("padding", "valid"))), (torch.empty(B, H, W, C, **meta),)
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
    work from layers on the meta device (also matmul M,K,N; conv2d B,H,W,C,KH,KW,O[,stride,padding];
    dense B,n_in,n_out; seed_gru_model B; seed_cnn_model B); backward=True counts forward + backward."""
    from torch.utils.flop_counter import FlopCounterMode

    fn, args = (work, args) if callable(work) else _work(work, backward, **sizes)
    with FlopCounterMode(display=False) as counter:
        fn(*args)
    return int(counter.get_total_flops())


# --------------------------------------------------------------------------- training (issue 3)


def keras_categorical_crossentropy(onehot: Any, probs: Any, eps: float = KERAS_EPSILON) -> Any:
    """Per-sample loss as keras.losses.categorical_crossentropy(from_logits=False) writes it
    (keras/src/backend/tensorflow/nn.py): renormalise the probabilities, clip to [eps, 1 - eps], -sum(t log p).
    (When Keras is handed a softmax output it carries, Keras may use the cached logits instead; the two agree
    wherever every probability lies inside [eps, 1 - eps].)"""
    p = probs / torch.sum(probs, dim=-1, keepdim=True)
    p = torch.clamp(p, eps, 1.0 - eps)
    return -torch.sum(onehot * torch.log(p), dim=-1)


def train_seed_model(model: str, params: Any, batches: list, lr: float = 1e-3, beta_1: float = 0.9,
                     beta_2: float = 0.999, eps: float | None = None, dtype: str = "float64") -> tuple[list[float], Any]:  # fmt: skip
    """SeedGRU / SeedCNN + torch.optim.Adam (eps None: torch's default 1e-8) on the mean Keras categorical
    cross-entropy of the softmax probabilities (keras_categorical_crossentropy). losses[i] is batch i's loss
    before update i; returns (losses, final canonical NumPy params). Deterministic: no dropout, seeded."""
    builders = {"gru": (SeedGRU, convert.seed_gru_from_torch), "cnn": (SeedCNN, convert.seed_cnn_from_torch)}
    if model not in builders:
        raise ValueError(f"unknown model {model!r}; valid: {', '.join(builders)}")
    cls, from_torch = builders[model]
    torch.manual_seed(0)
    kw = {} if model == "gru" else {"image": batches[0][0].shape[1:3]}
    net = cls.from_params(params, dtype, "cpu", trainable=True, **kw)
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(beta_1, beta_2), eps=1e-8 if eps is None else eps)
    losses = []
    for x, onehot in batches:
        loss = torch.mean(keras_categorical_crossentropy(asarray(onehot, dtype), net(asarray(x, dtype))))
        losses.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    state = {k: to_numpy(v) for k, v in net.state_dict().items()}
    if model == "cnn":
        image = (*batches[0][0].shape[1:3], int(params.conv1.kernel.shape[2]))
        fs = models.cnn_feature_shape(image, (int(params.conv1.kernel.shape[3]), int(params.conv2.kernel.shape[3])))
        return losses, from_torch(state, feature_shape=fs)
    return losses, from_torch(state)


__all__ = [
    "FRAMEWORK", "MODE", "MODES", "NAME", "SUPPORTED_VARIANTS", "SeedCNN", "SeedGRU", "asarray", "compile",
    "conv2d", "conv2d_param_count", "conv2d_vjp", "dense", "dense_param_count", "dense_vjp", "flop_count",
    "gru", "gru_param_count", "gru_vjp", "keras_categorical_crossentropy", "lstm_param_count", "max_pool2d",
    "max_pool2d_vjp", "relu", "relu_vjp", "seed_cnn_model", "seed_cnn_model_param_count", "seed_conv1d",
    "seed_gru_model", "seed_gru_model_param_count", "seed_pool1d", "softmax", "softmax_cross_entropy",
    "softmax_cross_entropy_vjp", "synchronize", "to_numpy", "torch_dtype", "train_seed_model",
]  # fmt: skip
