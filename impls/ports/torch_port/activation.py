"""The torch port's activation and dropout layers: nn.ReLU / nn.Tanh / nn.Sigmoid / nn.Softmax / nn.Identity, issue
24's nn.ReLU6 / nn.Hardswish / nn.SiLU / nn.GELU(approximate='none' or 'tanh') / nn.LeakyReLU(slope),
a hard_sigmoid as F.relu6(x + 3) / 6 or of other alpha and beta and a clip as a torch.clamp line, and nn.Dropout (the identity in eval mode). Both take their input in whatever layout it is held; a softmax over a map's
channels is over torch's dim 1.
"""

from __future__ import annotations

from ...layouts import Layout
from ...model.description import Layer
from .code import ANY_LAYOUT, EMITTERS, _Piece
from .source import torch_shape


@EMITTERS.register("activation", takes=ANY_LAYOUT)
def activation(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """The activation's own nn module; a softmax over the channels where a map is held channels-first."""
    name, rank = opts["activation"], len(shape)
    out = torch_shape(shape, layout) if rank in (3, 4) else ("B", *shape[1:])
    line = _line(opts)
    if line is not None:
        return _Piece(None, [f"x = {line}  # {layer.name}: {name}"], {}, lambda a: {}, out, layout, uses_f="F." in line)
    init = {"linear": "nn.Identity()", "relu": "nn.ReLU()", "tanh": "nn.Tanh()", "sigmoid": "nn.Sigmoid()",
            "softmax": f"nn.Softmax(dim={1 if layout.kind in ('nchw', 'ncw') else -1})",
            # -- issue 24's activations
            "relu6": "nn.ReLU6()", "hard_swish": "nn.Hardswish()", "silu": "nn.SiLU()",
            "gelu": "nn.GELU()", "gelu_tanh": "nn.GELU(approximate='tanh')",
            "leaky_relu": f"nn.LeakyReLU(negative_slope={opts.get('negative_slope')!r})"}[name]  # fmt: skip
    comment = "softmax over channels" if name == "softmax" and layout.kind in ("nchw", "ncw") else name
    return _Piece(init, [f"x = self.{{a}}(x)  # {comment}"], {}, lambda a: {}, out, layout)


def _line(opts: dict) -> str | None:
    """The activations written as a line: hard_sigmoid (relu6(x + 3) / 6, nn.Hardsigmoid's formula, or of another
    alpha and beta (ONNX's default 0.2, say) a clamp), and a clip (torch.clamp: its gradient passes at the bounds, as the
    reference's does; nn.Hardtanh's would not)."""
    name = opts["activation"]
    if name == "hard_sigmoid" and (opts["alpha"], opts["beta"]) != (1 / 6, 0.5):
        return f"torch.clamp(x * {opts['alpha']!r} + {opts['beta']!r}, 0.0, 1.0)"
    if name == "hard_sigmoid":  # nn.Hardsigmoid's own formula: its float64 backward multiplies by float32(1 / 6)
        return "F.relu6(x + 3.0) / 6.0"
    if name == "clip":
        return f"torch.clamp(x, {opts['min']!r}, {opts['max']!r})"
    return None


@EMITTERS.register("dropout", takes=ANY_LAYOUT)
def dropout(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """nn.Dropout(p=rate): the identity in eval mode, which the port's load() returns."""
    return _Piece(f"nn.Dropout(p={opts['rate']})", ["x = self.{a}(x)  # identity in eval mode"], {}, lambda a: {},
                  torch_shape(shape, layout), layout)  # fmt: skip


__all__ = ["activation", "dropout"]
