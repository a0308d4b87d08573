"""The element-wise layers: nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Softmax and their function and Tensor-method forms
(activation), nn.Dropout and F.dropout(training=self.training) (dropout), and nn.Identity / x.contiguous() (no layer).

A softmax is over the description's last axis: the channels, dim 1 of an NCHW / NCW map.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .context import REGISTRY, F, Node, Step, _arg, _Ctx, _step, nn, torch


def _activation(name: str) -> Callable:
    def convert_(ctx: _Ctx, node: Node, obj: Any) -> Step:
        return _step(ctx, node, "activation", {"activation": name})

    return convert_


REGISTRY.register(nn.ReLU, torch.relu, F.relu, "relu", kinds=("activation",))(_activation("relu"))
REGISTRY.register(nn.Tanh, torch.tanh, F.tanh, "tanh", kinds=("activation",))(_activation("tanh"))
REGISTRY.register(nn.Sigmoid, torch.sigmoid, F.sigmoid, "sigmoid", kinds=("activation",))(_activation("sigmoid"))


@REGISTRY.register(nn.Softmax, torch.softmax, F.softmax, "softmax", kinds=("activation",))
def _softmax(ctx: _Ctx, node: Node, obj: Any) -> Step:
    rank = len(ctx.shapes[node.args[0]])
    dim = obj.dim if isinstance(obj, nn.Module) else _arg(node, 1, "dim", None)
    if not isinstance(obj, nn.Module) and (_arg(node, 2 if obj is torch.softmax else 3, "dtype", None) is not None):
        raise ctx.refuse(node, "softmax with dtype= computes in another dtype")
    if dim is None:  # torch's implicit dim (F._get_softmax_dim)
        dim = 0 if rank in (0, 1, 3) else 1
    dim = dim % rank
    want = 1 if ctx.layout.kind in ("nchw", "ncw") else rank - 1  # the description's last axis: channels in NCHW
    if dim != want:
        raise ctx.refuse(node, f"softmax over dim {dim} of {ctx.shapes[node.args[0]]}; the description's softmax is "
                               f"over the last axis (dim {want} here)")  # fmt: skip
    return _step(ctx, node, "activation", {"activation": "softmax"})


@REGISTRY.register(nn.Dropout, F.dropout, kinds=("dropout",))
def _dropout(ctx: _Ctx, node: Node, obj: Any) -> Step:
    if isinstance(obj, nn.Module):
        p = float(obj.p)
    else:
        p, training = float(_arg(node, 1, "p", 0.5)), _arg(node, 2, "training", True)
        if training is not False:
            raise ctx.refuse(node, f"F.dropout(training={training!r}) drops at inference too; pass training=self.training")
    return _step(ctx, node, "dropout", {"rate": p})


@REGISTRY.register(nn.Identity, "contiguous", kinds=())
def _identity(ctx: _Ctx, node: Node, obj: Any) -> Step:
    return Step(None, [node], ctx.layout)

