"""PyTorch pieces of the benchmark harness: device facts, precision switches, CUDA-event timing, the
ceilings, and the prepared callables for rows that the contract's functions would time with setup inside.

Why prepared callables: torch_builtin.gru(x, weights) builds nn.GRU and converts the weights on every
call (right for verification, wrong for timing), and a model's gradient or optimiser step has no
contract function. Here layers, models and optimisers are built once from canonical weights through
impls/convert.py; the callable returned does only the framework's work. `post` (outside the timed
region) maps what the callable returned back to canonical NumPy arrays in the order the reference uses.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from statistics import median
from typing import Any

import numpy as np

from impls import convert, frameworks
from impls.model.compose import compose
from impls.train import numpy_train

from . import works

torch = frameworks.load("torch")
nn = torch.nn

NUMPY_EPSILON = numpy_train.KERAS_EPSILON  # the probability clip of the loss every model row uses
TORCH_ADAM_EPS = 1e-8  # torch.optim.Adam's default


def cuda_available() -> bool:
    return bool(torch.cuda.is_available())


def gpu_facts() -> dict[str, Any] | None:
    """Name, driver, CUDA and cuDNN versions of GPU 0, or None without one."""
    if not cuda_available():
        return None
    props = torch.cuda.get_device_properties(0)
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             check=False, capture_output=True, text=True, timeout=20)  # fmt: skip
        driver = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        driver = None
    return {
        "name": torch.cuda.get_device_name(0),
        "driver": driver,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
        "memory_gib": round(props.total_memory / 2**30, 1),
        "count": torch.cuda.device_count(),
    }


def threads() -> int:
    return int(torch.get_num_threads())


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


@contextmanager
def precision(p: str, device: str) -> Iterator[None]:
    """TF32 on for "tf32" rows and off for every other row on cuda (cuDNN allows TF32 by default, which
    would make a "float32" row a TF32 row without saying so). No-op on the CPU."""
    if device != "cuda":
        yield
        return
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = p == "tf32"
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


class EventTimer:
    """CUDA events around each call the blocks time (bench/groups.py sizes it: loops x blocks pairs), in the
    same blocks, not a second window: the fidelity check of the wall-clock times. `wrap(fn)` records a start
    event, calls fn, records an end event; the caller's wait follows, inside its timed unit. `median_s()`
    reads the pairs after the blocks (reading an event's time inside the timed call would add a host round
    trip)."""

    def __init__(self, n: int):
        self.pairs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(n)]
        self.used = 0

    def wrap(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        def call():
            start, end = self.pairs[self.used]  # one pair per timed round: more calls than rounds is an IndexError
            self.used += 1
            start.record()
            out = fn()
            end.record()
            return out

        return call

    def median_s(self) -> float:
        torch.cuda.synchronize()
        return float(median(s.elapsed_time(e) for s, e in self.pairs[: self.used])) / 1e3


class SpinWait:
    """Wait for the GPU by recording an event on the current stream and spinning on its query(), instead of
    torch.cuda.synchronize() (which may sleep and wake late: the H100 runs read 50-190 us more than CUDA
    events on 1-3 ms calls). One event, re-recorded per call."""

    def __init__(self):
        self.event = torch.cuda.Event()

    def __call__(self) -> None:
        self.event.record()
        while not self.event.query():
            pass


# --------------------------------------------------------------------------- boundary


def _dtype(name: str) -> Any:
    return getattr(torch, name)


def tensor(a: np.ndarray, dtype: str, device: str) -> Any:
    return torch.from_numpy(np.ascontiguousarray(a)).to(device=device, dtype=_dtype(dtype))


def to_np(t: Any) -> np.ndarray:
    t = t.detach()
    return (t.float() if t.dtype == torch.bfloat16 else t).cpu().numpy().astype(np.float64)


# --------------------------------------------------------------------------- ceilings


def matmul(n: int, dtype: str, device: str, seed: int) -> tuple[Callable, Callable]:
    """An n x n x n product; check() -> (first 64 rows of the product, A[:64], B) for the reference."""
    g = np.random.default_rng(seed)
    A, B = g.uniform(-1, 1, (n, n)), g.uniform(-1, 1, (n, n))
    a, b = tensor(A, dtype, device), tensor(B, dtype, device)
    out = torch.empty((n, n), dtype=_dtype(dtype), device=device)

    def fn():
        return torch.matmul(a, b, out=out)

    return fn, lambda: (to_np(out[:64]), to_np(a[:64]), to_np(b))


def copy(n: int, dtype: str, device: str, seed: int) -> tuple[Callable, Callable]:
    src = torch.from_numpy(np.random.default_rng(seed).random(n, dtype=np.float32)).to(device=device, dtype=_dtype(dtype))
    dst = torch.empty_like(src)

    def fn():
        return dst.copy_(src)

    return fn, lambda: (dst.cpu().numpy(), src.cpu().numpy())


# --------------------------------------------------------------------------- built-in layers, prepared


def _load(module: Any, state: dict[str, np.ndarray], dtype: str, device: str, trainable: bool) -> Any:
    module = module.to(device=device, dtype=_dtype(dtype))
    module.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()})
    module.requires_grad_(trainable)
    if isinstance(module, nn.RNNBase):
        module.flatten_parameters()
    return module


def builtin_op(work: str, pass_: str, a: dict[str, Any], variant: str | None, dtype: str, device: str
               ) -> tuple[Callable, Callable, str]:  # fmt: skip
    """torch.nn layer for `work`, built and loaded outside the timed call, in torch's own layout (NCHW for
    images). Returns (fn, post, what is timed); post gives canonical NumPy outputs (NHWC, HWIO ...)."""
    bwd = pass_ != "fwd"
    t = lambda arr: tensor(arr, dtype, device)
    if work == "gru":
        if variant != "reset_after":
            raise ValueError(f"torch.nn.GRU computes only reset_after, not {variant!r}")
        w = a["weights"]
        layer = _load(nn.GRU(w.W.shape[0], w.U.shape[0], batch_first=True), convert.gru_to_torch(w), dtype, device, bwd)
        x = t(a["x"])
        if not bwd:
            return (lambda: layer(x)), (lambda out: [to_np(out[0]), to_np(out[1][0])]), "nn.GRU(x) layer call"
        x.requires_grad_(True)
        h0 = torch.zeros((1, x.shape[0], w.U.shape[0]), dtype=x.dtype, device=device, requires_grad=True)
        names, params = zip(*layer.named_parameters())
        dy = t(a["dy"])

        def fn():
            y, _ = layer(x, h0)
            return torch.autograd.grad(y, [x, h0, *params], grad_outputs=dy)

        def post(g):
            cw = convert.gru_from_torch({k: to_np(v) for k, v in zip(names, g[2:])})
            d = {"x": to_np(g[0]), "h0": to_np(g[1])[0], "W": cw.W, "U": cw.U, "b_x": cw.b_x, "b_h": cw.b_h}
            return [d[k] for k in sorted(d)]

        return fn, post, "nn.GRU forward + torch.autograd.grad(x, h0, weights)"
    if work in ("conv2d", "max_pool2d"):
        x = t(convert.nhwc_to_nchw(a["x"]))
        if work == "conv2d":
            k = a["kernel"]
            layer = nn.Conv2d(k.shape[2], k.shape[3], k.shape[:2])
            layer = _load(layer, {"weight": convert.hwio_to_oihw(k), "bias": a["bias"]}, dtype, device, bwd)
            what = "nn.Conv2d(x NCHW)"
        else:
            layer, what = nn.MaxPool2d(2), "nn.MaxPool2d(2)(x NCHW)"
        if not bwd:
            return (lambda: layer(x)), (lambda out: [convert.nchw_to_nhwc(to_np(out))]), what
        x.requires_grad_(True)
        params = list(layer.parameters())
        dy = t(convert.nhwc_to_nchw(a["dy"]))

        def fn():
            return torch.autograd.grad(layer(x), [x, *params], grad_outputs=dy)

        def post(g):
            d = {"x": convert.nchw_to_nhwc(to_np(g[0]))}
            if work == "conv2d":
                d |= {"kernel": convert.oihw_to_hwio(to_np(g[1])), "bias": to_np(g[2])}
            return [d[k] for k in sorted(d)]

        return fn, post, what + " forward + torch.autograd.grad"
    if work == "dense":
        k = a["kernel"]
        layer = _load(nn.Linear(*k.shape), {"weight": convert.dense_to_torch(k), "bias": a["bias"]}, dtype, device, bwd)
        x = t(a["x"])
        if not bwd:
            return (lambda: layer(x)), (lambda out: [to_np(out)]), "nn.Linear(x)"
        x.requires_grad_(True)
        dy = t(a["dy"])

        def fn():
            return torch.autograd.grad(layer(x), [x, layer.weight, layer.bias], grad_outputs=dy)

        def post(g):
            d = {"x": to_np(g[0]), "kernel": convert.dense_from_torch(to_np(g[1])), "bias": to_np(g[2])}
            return [d[k] for k in sorted(d)]

        return fn, post, "nn.Linear forward + torch.autograd.grad"
    raise ValueError(f"no torch.nn layer for work {work!r}")


# --------------------------------------------------------------------------- seed models: gradients and steps


def xent(probs: Any, onehot: Any) -> Any:
    """Mean categorical cross-entropy of probabilities as Keras and numpy_train compute it: renormalise,
    clip to [eps, 1 - eps], -sum(t log p)."""
    p = probs / torch.sum(probs, dim=-1, keepdim=True)
    p = torch.clamp(p, NUMPY_EPSILON, 1.0 - NUMPY_EPSILON)
    return torch.mean(-torch.sum(onehot * torch.log(p), dim=-1))


def _net(work: str, a: dict[str, Any], variant: str, dtype: str, device: str) -> tuple[Any, Callable]:
    """The torch port of the row's seed model (the nn.Module nnparity writes, loaded by its own load()), trainable on
    `device`, and the map of its parameters' arrays {state key: array} back to the canonical leaves."""
    from impls.ports import torch_port

    description = works.description(work, a, variant)
    net, code = torch_port.load_port(description, dtype)
    net = net.to(device=device).requires_grad_(True)
    for m in net.modules():
        if isinstance(m, nn.RNNBase):
            m.flatten_parameters()

    def back(named: dict[str, np.ndarray]) -> list[np.ndarray]:
        canonical = torch_port.canonical(description, named, code)
        return [canonical[k] for k in description.parameters()]

    return net, back


def model_grads(impl: str, work: str, a: dict[str, Any], variant: str, dtype: str, device: str
                ) -> tuple[Callable, Callable, str]:  # fmt: skip
    """Loss and gradients of every parameter of a seed model: (fn, post -> [loss, *canonical grads], what)."""
    x, onehot = tensor(a["x"], dtype, device), tensor(a["onehot"], dtype, device)
    if impl == "torch_nn":
        if variant != "reset_after" and work == "seed_gru_model":
            raise ValueError(f"torch.nn.GRU computes only reset_after, not {variant!r}")
        net, back = _net(work, a, variant, dtype, device)
        names, params = zip(*net.named_parameters())

        def fn():
            loss = xent(net(x), onehot)
            return loss, torch.autograd.grad(loss, params)

        def post(out):
            return [to_np(out[0]), *back({k: to_np(v) for k, v in zip(names, out[1])})]

        return fn, post, "nn.Module forward + loss + torch.autograd.grad(parameters)"
    if impl == "torch":
        from impls.primitives import torch_impl

        composed = compose(torch_impl, works.description(work, a, variant), dtype, device)
        ws = [{k: v.requires_grad_(True) for k, v in w.items()} for w in composed.weights]
        flat = [v for w in ws for v in w.values()]  # the description's parameters() order: numpy_train.leaves'
        forward = lambda x: composed.chain(ws, x)

        def fn():
            loss = xent(forward(x), onehot)
            return loss, torch.autograd.grad(loss, flat)

        return fn, (lambda out: [to_np(out[0]), *(to_np(g) for g in out[1])]), "forward + loss + torch.autograd.grad"
    raise ValueError(f"no torch gradient adapter for implementation {impl!r}")


def train_step(impl: str, work: str, a: dict[str, Any], variant: str, dtype: str, device: str
               ) -> tuple[Callable, Callable, str, dict[str, Any]]:  # fmt: skip
    """One torch.optim.Adam step of the torch.nn seed model. Returns (fn, observe, what, adam settings):
    observe(what fn returned) after a step gives {"loss", "grads", "params"} (canonical NumPy) of that step."""
    if impl != "torch_nn":
        raise ValueError(f"no torch training adapter for implementation {impl!r}")
    if variant != "reset_after" and work == "seed_gru_model":
        raise ValueError(f"torch.nn.GRU computes only reset_after, not {variant!r}")
    x, onehot = tensor(a["x"], dtype, device), tensor(a["onehot"], dtype, device)
    net, back = _net(work, a, variant, dtype, device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=TORCH_ADAM_EPS)

    def fn():
        opt.zero_grad(set_to_none=True)
        loss = xent(net(x), onehot)
        loss.backward()
        opt.step()
        return loss

    def observe(loss):
        named = dict(net.named_parameters())
        rebuild = lambda arrays: numpy_train.rebuild(a["params"], arrays)  # the canonical params dataclass
        return {
            "loss": to_np(loss),
            "grads": rebuild(back({k: to_np(p.grad) for k, p in named.items()})),
            "params": rebuild(back({k: to_np(p) for k, p in named.items()})),
        }

    return fn, observe, "zero_grad + forward + loss + backward + torch.optim.Adam.step", {
        "flavour": "torch", "eps": TORCH_ADAM_EPS, "lr": 1e-3}  # fmt: skip
