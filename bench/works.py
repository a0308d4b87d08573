"""What each benchmarked work computes: seeded inputs, the call per pass, and how to shorten a GRU
for its reference (no framework here; implementations are passed in as modules).

Inputs are float64 NumPy, seeded from the row's size label, never constant or symmetric. `call`
runs one pass on native inputs and returns a list of outputs in a fixed order (forward: the
outputs; fwd+bwd: the vjp's gradients, sorted by name) so the same code gives both the timed call
and the NumPy float64 reference.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from impls.contract.models import SeedCNNParams, SeedGRUParams, init_seed_cnn, init_seed_gru
from impls.contract.spec import init_conv, init_dense, init_gru, random_array


def seed_of(label: str) -> int:
    """A stable seed per size label (independent of PYTHONHASHSEED)."""
    return zlib.crc32(label.encode()) % 2**31


def make_inputs(work: str, dims: dict[str, int], pass_: str, label: str) -> dict[str, Any]:
    """Seeded float64 inputs of one row. fwd+bwd rows also get the cotangent dy of the output."""
    s = seed_of(f"{work} {label}")
    d = dims
    if work == "gru":
        a = {"x": random_array((d["B"], d["T"], d["I"]), s), "weights": init_gru(d["I"], d["H"], s + 1)}
        if pass_ != "fwd":
            a["dy"] = random_array((d["B"], d["T"], d["H"]), s + 2)
        return a
    if work in ("lstm", "bilstm", "bigru"):  # one-layer descriptions (bench/prepare.py: layer_description)
        H = 2 * d["H"] if work.startswith("bi") else d["H"]
        a = {"x": random_array((d["B"], d["T"], d["I"]), s)}
        if pass_ != "fwd":
            a["dy"] = random_array((d["B"], H), s + 2)
        return a
    if work == "conv2d":
        k = init_conv(d["KH"], d["KW"], d["C"], d["O"], s + 1)
        a = {"x": random_array((d["B"], d["HI"], d["WI"], d["C"]), s), "kernel": k.kernel, "bias": k.bias}
        if pass_ != "fwd":
            a["dy"] = random_array((d["B"], d["OH"], d["OW"], d["O"]), s + 2)
        return a
    if work == "max_pool2d":
        a = {"x": pool_input(d["B"], d["HI"], d["WI"], d["C"], d["P"], s)}
        if pass_ != "fwd":
            a["dy"] = random_array((d["B"], d["OH"], d["OW"], d["C"]), s + 2)
        return a
    if work == "dense":
        k = init_dense(d["IN"], d["OUT"], s + 1)
        a = {"x": random_array((d["B"], d["IN"]), s), "kernel": k.kernel, "bias": k.bias}
        if pass_ != "fwd":
            a["dy"] = random_array((d["B"], d["OUT"]), s + 2)
        return a
    if work == "seed_gru_model":
        params = init_seed_gru(s + 1, input_size=d["I"], units=(d["H1"], d["H2"]), classes=d["CL"])
        x = random_array((d["B"], d["T"], d["I"]), s)
        return {"x": x, "params": params, "onehot": onehot(d["B"], d["CL"], s + 2)}
    if work == "seq_task":  # the sequence task's descriptions hold their own weights (bench/seqtask.py)
        return {"x": random_array((d["B"], d["T"], d["I"]), s), "onehot": onehot(d["B"], d["CL"], s + 2)}
    if work == "seed_cnn_model":
        params = init_seed_cnn(s + 1, image=(d["H"], d["W"], d["C"]), filters=(d["F1"], d["F2"]),
                               dense_units=d["D"], classes=d["CL"])  # fmt: skip
        x = random_array((d["B"], d["H"], d["W"], d["C"]), s, low=0.0, high=1.0)
        return {"x": x, "params": params, "onehot": onehot(d["B"], d["CL"], s + 2)}
    raise ValueError(f"no inputs for work {work!r}")


def pool_input(B: int, HI: int, WI: int, C: int, P: int, seed: int) -> np.ndarray:
    """Max-pool input whose values inside each window differ by at least 0.25, so they stay distinct after
    rounding to bfloat16 or float16: with ties, which element receives the gradient is a convention
    (implementations differ), not an error. The position of each window's maximum is random."""
    g = np.random.default_rng(seed)
    OH, OW = HI // P, WI // P
    base = g.uniform(-1.0, 0.25, (B, OH, OW, C, 1))
    ranks = np.argsort(g.random((B, OH, OW, C, P * P)), axis=-1)  # a random order inside every window
    win = (base + 0.25 * ranks).reshape(B, OH, OW, C, P, P)  # (B, OH, OW, C, ph, pw)
    x = g.uniform(-1.0, 1.0, (B, HI, WI, C))  # rows and columns no window covers stay random
    x[:, : OH * P, : OW * P] = win.transpose(0, 1, 4, 2, 5, 3).reshape(B, OH * P, OW * P, C)
    return x


def onehot(B: int, classes: int, seed: int) -> np.ndarray:
    labels = np.random.default_rng(seed).integers(0, classes, B)
    return np.eye(classes)[labels]


def op_call(work: str, pass_: str, variant: str | None) -> Callable[[Any, dict[str, Any]], list]:
    """(module, native inputs) -> list of native outputs, for an op row's pass."""
    if pass_ == "fwd":
        calls = {
            "gru": lambda m, a: list(m.gru(a["x"], a["weights"], variant)),
            "conv2d": lambda m, a: [m.conv2d(a["x"], a["kernel"], a["bias"])],
            "max_pool2d": lambda m, a: [m.max_pool2d(a["x"], 2)],
            "dense": lambda m, a: [m.dense(a["x"], a["kernel"], a["bias"])],
        }
    elif pass_ == "fwd+bwd":
        calls = {
            "gru": lambda m, a: _sorted(m.gru_vjp(a["x"], a["weights"], variant, a["dy"])),
            "conv2d": lambda m, a: _sorted(m.conv2d_vjp(a["x"], a["kernel"], a["bias"], a["dy"])),
            "max_pool2d": lambda m, a: _sorted(m.max_pool2d_vjp(a["x"], a["dy"], 2)),
            "dense": lambda m, a: _sorted(m.dense_vjp(a["x"], a["kernel"], a["bias"], a["dy"])),
        }
    else:
        raise ValueError(f"ops have passes fwd and fwd+bwd, not {pass_!r}")
    return calls[work]


OP_FUNCTIONS = {
    ("gru", "fwd"): "gru", ("conv2d", "fwd"): "conv2d", ("max_pool2d", "fwd"): "max_pool2d", ("dense", "fwd"): "dense",
    ("gru", "fwd+bwd"): "gru_vjp", ("conv2d", "fwd+bwd"): "conv2d_vjp", ("max_pool2d", "fwd+bwd"): "max_pool2d_vjp",
    ("dense", "fwd+bwd"): "dense_vjp",
}  # fmt: skip
"""The contract function each op row calls (a module lacking it makes the row skip with that reason)."""


def _sorted(grads: dict) -> list:
    return [grads[k] for k in sorted(grads)]


def output_names(work: str, pass_: str) -> list[str]:
    if pass_ == "fwd":
        return ["y", "h_T"] if work == "gru" else ["y"]
    keys = {"gru": ["x", "h0", "W", "U", "b_x", "b_h"], "conv2d": ["x", "kernel", "bias"], "max_pool2d": ["x"],
            "dense": ["x", "kernel", "bias"]}[work]  # fmt: skip
    return sorted(keys)


def truncate_gru(inputs: dict[str, Any], steps: int) -> dict[str, Any]:
    """The first `steps` timesteps of a GRU row's inputs (for the reference of very long rows)."""
    out = dict(inputs)
    out["x"] = inputs["x"][:, :steps]
    if "dy" in inputs:
        out["dy"] = inputs["dy"][:, :steps]
    return out


def description(work: str, inputs: dict[str, Any], variant: str | None):
    """A seed-model row's model description (impls/model/seed.py), holding the row's parameters."""
    from impls.model import seed as seed_models

    x = inputs["x"]
    if work == "seed_gru_model":
        return seed_models.from_gru_params(inputs["params"], variant, int(x.shape[1]))
    return seed_models.from_cnn_params(inputs["params"], tuple(int(d) for d in x.shape[1:]))


def model_params(inputs: dict[str, Any]) -> SeedGRUParams | SeedCNNParams:
    return inputs["params"]
