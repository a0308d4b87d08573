"""The torch port's normalizations: batch_norm as nn.BatchNorm1d / nn.BatchNorm2d over the channels, layer_norm as
nn.LayerNorm over the canonical last axis.

torch's BatchNorm momentum is the share of the new batch statistic, 1 - the description's (torch_momentum), and it
moves running_var with the unbiased batch variance: a 'biased' layer (Keras', Flax's) ports forward-exact only.
torch's BatchNorm has both gamma and beta or neither, its LayerNorm a bias only beside its weight: a layer with
one of the two (Keras' BatchNormalization(scale=False), InceptionV3's) is the affine module with the missing one held
at its identity value (weight 1, bias 0) and frozen (`frozen(...)`: requires_grad False), which computes exactly the
description's layer; the training step and the gradients leave it out, as the description has no such weight.
"""

from __future__ import annotations

import numpy as np

from ...layouts import Layout
from ...model.description import Layer, Model
from .code import EMITTERS, _Piece
from .source import HELPERS, shape_text, torch_shape

HELPERS["frozen"] = '''def frozen(module, *names):
    """A normalization without a scale (or a shift): the parameters `names` held at their identity value (weight 1,
    bias 0, as weights.pt holds them) and never trained (requires_grad False)."""
    for name in names:
        getattr(module, name).requires_grad_(False)
    return module'''


def _frozen(init: str, opts: dict) -> tuple[str, tuple[str, ...]]:
    """The constructor wrapped in frozen(...) for the affine parameters the layer does not have."""
    names = [*(["weight"] if not opts["scale"] else []), *(["bias"] if not opts["center"] else [])]
    if not names:
        return init, ()
    return f"frozen({init}, {', '.join(repr(n) for n in names)})", ("frozen",)


def _affine_state(layer: Layer, opts: dict, c: int) -> dict[str, np.ndarray]:
    """weight and bias in torch's module: gamma and beta where the layer has them, else 1 and 0 (held frozen)."""
    dt = np.asarray(next(iter(layer.weights.values()))).dtype if layer.weights else np.float64
    return {"weight": np.asarray(layer.weights["gamma"]).copy() if opts["scale"] else np.ones(c, dt),
            "bias": np.asarray(layer.weights["beta"]).copy() if opts["center"] else np.zeros(c, dt)}


def _back(opts: dict, names: dict[str, str]):
    """torch-layout arrays -> canonical ones, leaving out a frozen weight / bias (the layer has no such weight)."""
    keep = {"weight": opts["scale"], "bias": opts["center"]}

    def back(a):
        return {names[k]: np.asarray(v) for k, v in a.items() if k in names and keep.get(k, True)}

    return back


def torch_momentum(momentum: float) -> float:
    """The description's momentum (the fraction of the old moving statistic kept) as torch's (that of the new one)."""
    m = 1.0 - float(momentum)
    short = float(f"{m:.12g}")
    return short if abs(short - m) <= 1e-15 else m


def _batch_norm_takes(rank: int) -> tuple[str, ...]:
    """A map over its channels: NCHW, NCW; a vector as it is."""
    return {4: ("nchw",), 3: ("ncw",)}.get(rank, ("plain",))


@EMITTERS.register("batch_norm", takes=_batch_norm_takes, reads_map=True)
def batch_norm(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """nn.BatchNorm1d (B, C) or NCW / nn.BatchNorm2d NCHW over the channels; running_mean / running_var are the
    description's moving statistics. torch's momentum is 1 - the description's; torch moves running_var with the
    unbiased batch variance (variance_update 'unbiased')."""
    rank, c = len(shape), shape[-1]
    cls = "BatchNorm2d" if rank == 4 else "BatchNorm1d"
    m = opts["momentum"]
    args = [str(c), f"eps={opts['epsilon']!r}", f"momentum={torch_momentum(m)!r}"]
    affine = opts["scale"] or opts["center"]
    if not affine:
        args.append("affine=False")
    init, helpers = _frozen(f"nn.{cls}({', '.join(args)})", opts) if affine else (f"nn.{cls}({', '.join(args)})", ())
    init += f"  # momentum: torch's share of the new batch statistic (1 - {m!r})"
    state = _affine_state(layer, opts, c) if affine else {}
    state["running_mean"] = np.asarray(layer.weights["moving_mean"]).copy()
    state["running_var"] = np.asarray(layer.weights["moving_var"]).copy()
    state["num_batches_tracked"] = np.array(0, np.int64)
    back = _back(opts, {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_var"})

    out = torch_shape(shape, layout)
    return _Piece(init, [f"x = self.{{a}}(x)  # {shape_text(out)}: over the channels"], state, back, out, layout,
                  helpers=helpers)


@EMITTERS.register("layer_norm", takes=("nchw", "ncw", "plain"))
def layer_norm(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """nn.LayerNorm over the canonical last axis (the features; the channels of a map): torch's LayerNorm normalises
    its input's last axis, so an NCW / NCHW map is permuted channels-last around it."""
    c = shape[-1]
    args = [str(c), f"eps={opts['epsilon']!r}"]
    affine = opts["scale"] or opts["center"]
    if not affine:
        args.append("elementwise_affine=False")
    elif not opts["center"]:
        args.append("bias=False")
    init = f"nn.LayerNorm({', '.join(args)})"
    helpers: tuple[str, ...] = ()
    if affine and not opts["scale"]:  # a bias alone: the weight held at 1, frozen
        init, helpers = _frozen(init, {**opts, "center": True})
    state = {}
    if affine:
        state["weight"] = _affine_state(layer, opts, c)["weight"]
    if opts["center"]:
        state["bias"] = np.asarray(layer.weights["beta"]).copy()
    back = _back(opts, {"weight": "gamma", "bias": "beta"})

    out = torch_shape(shape, layout)
    if layout.kind == "nchw":
        line = "x = self.{a}(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # over the channels (torch's LayerNorm: the last axis)"
    elif layout.kind == "ncw":
        line = "x = self.{a}(x.permute(0, 2, 1)).permute(0, 2, 1)  # over the channels (torch's LayerNorm: the last axis)"
    else:
        line = f"x = self.{{a}}(x)  # {shape_text(out)}: over the last axis"
    return _Piece(init, [line], state, back, out, layout, helpers=helpers)


@EMITTERS.register("lrn", takes=lambda rank: ("nchw",) if rank == 4 else ("ncw", "plain"), reads_map=True)
def lrn(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """nn.LocalResponseNorm(size, alpha, beta, k=bias) over dim 1, the channels: torch divides alpha by size as the
    description does and pads an even window with its extra channel before c (F.local_response_norm pads size // 2
    before, (size - 1) // 2 after). The description's other even window ("after", ONNX's) is torch's on the channels
    reversed: x.flip(1) around it (exact: the window mirrors)."""
    size = opts["size"]
    init = (f"nn.LocalResponseNorm({size}, alpha={opts['alpha']!r}, beta={opts['beta']!r}, k={opts['bias']!r})  "
            "# alpha / size, as the description")  # fmt: skip
    out = torch_shape(shape, layout)
    call = "self.{a}(x.flip(1)).flip(1)" if size % 2 == 0 and opts["extra"] == "after" else "self.{a}(x)"
    why = (": the even window's extra channel after c (torch's is before it): the channels reversed around it"
           if "flip" in call else "")  # fmt: skip
    if layout.kind == "plain":  # a (B, L, C) sequence: its channels to dim 1 and back
        call = call.replace("(x", "(x.permute(0, 2, 1)", 1) + ".permute(0, 2, 1)"
    return _Piece(init, [f"x = {call}  # {shape_text(out)}: across the channels{why}"], {}, lambda a: {}, out, layout)


def _biased_batch_norms(model: Model) -> list[str]:
    """The BatchNorm layers whose moving variance moves with the biased batch variance (Keras, Flax): torch's
    BatchNorm moves running_var with the unbiased one, so their port is forward-exact only."""
    return [la.label(i) for i, la in enumerate(model.layers)
            if la.kind == "batch_norm" and la.options.get("variance_update", "biased") == "biased"]  # fmt: skip


def notes(model: Model) -> list[str]:
    """What the port translates for the normalizations, for the certificate: torch's momentum, LayerNorm's permutes
    around a channels-first map, and the BatchNorm layers a training step moves in torch's convention."""
    notes = []
    for i, layer in enumerate(model.layers):
        if layer.kind == "batch_norm":
            m = float(layer.options.get("momentum", 0.99))
            notes.append(f"{layer.label(i)}: nn.BatchNorm{'2d' if len(model.input_shapes(1)[i]) == 4 else '1d'} with "
                         f"momentum={torch_momentum(m)!r} (torch's share of the new batch statistic; the "
                         f"description keeps {m!r} of the old)")  # fmt: skip
        if layer.kind == "layer_norm" and len(model.input_shapes(1)[i]) > 2 and len(model.input_shape) >= 2:
            notes.append(f"{layer.label(i)}: nn.LayerNorm normalises its input's last axis: a channels-first map is "
                         "permuted channels-last around it")  # fmt: skip
    for label in _biased_batch_norms(model):
        notes.append(f"{label}: forward-exact only: the description moves the moving variance with the biased batch "
                     "variance (variance_update 'biased', Keras' and Flax's); torch's BatchNorm moves running_var with "
                     "the unbiased one (n / (n - 1) times it): a training step moves it in torch's convention")  # fmt: skip
    return notes


__all__ = ["batch_norm", "layer_norm", "lrn", "notes", "torch_momentum"]
