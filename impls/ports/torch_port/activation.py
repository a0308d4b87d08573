"""The torch port's activation and dropout layers: nn.ReLU / nn.Tanh / nn.Sigmoid / nn.Softmax / nn.Identity, and
nn.Dropout (the identity in eval mode). Both take their input in whatever layout it is held; a softmax over a map's
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
    init = {"linear": "nn.Identity()", "relu": "nn.ReLU()", "tanh": "nn.Tanh()", "sigmoid": "nn.Sigmoid()",
            "softmax": f"nn.Softmax(dim={1 if layout.kind in ('nchw', 'ncw') else -1})"}[name]  # fmt: skip
    comment = "softmax over channels" if name == "softmax" and layout.kind in ("nchw", "ncw") else name
    out = torch_shape(shape, layout) if rank in (3, 4) else ("B", *shape[1:])
    return _Piece(init, [f"x = self.{{a}}(x)  # {comment}"], {}, lambda a: {}, out, layout)


@EMITTERS.register("dropout", takes=ANY_LAYOUT)
def dropout(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """nn.Dropout(p=rate): the identity in eval mode, which the port's load() returns."""
    return _Piece(f"nn.Dropout(p={opts['rate']})", ["x = self.{a}(x)  # identity in eval mode"], {}, lambda a: {},
                  torch_shape(shape, layout), layout)  # fmt: skip


__all__ = ["activation", "dropout"]
