"""Tracing's shape pass: every fx node's output shape for one input of the user's shape, and the message that names
the node an input shape does not fit. An nn.Embedding reading the input makes that input integer ids.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...contract.spec import ShapeError
from .context import Node, fx, nn, torch


class _ShapePass(fx.Interpreter):
    """Every node's output shape for one input; a node that fails names itself."""

    def __init__(self, gm: Any):
        super().__init__(gm)
        self.shapes: dict = {}

    def run_node(self, n: Node) -> Any:
        try:
            out = super().run_node(n)
        except Exception as e:
            self.failed = n
            raise _NodeFailed(n, e) from e
        self.shapes[n] = (tuple(out.shape) if isinstance(out, torch.Tensor) else
                          tuple(tuple(o.shape) if isinstance(o, torch.Tensor) else o for o in out) if isinstance(out, tuple) else out)  # fmt: skip
        return out


class _NodeFailed(Exception):
    def __init__(self, node: Node, error: Exception):
        super().__init__(str(error))
        self.node, self.error = node, error


def _expects(m: Any) -> str:
    if isinstance(m, nn.Conv2d):
        return f"(B, {m.in_channels}, H, W)"
    if isinstance(m, nn.Linear):
        return f"(..., {m.in_features})"
    if isinstance(m, (nn.GRU, nn.LSTM)):
        return f"(B, T, {m.input_size})" if m.batch_first else f"(T, B, {m.input_size})"
    if isinstance(m, nn.Embedding):
        return f"integer ids (B, T) in [0, {m.num_embeddings})"
    return "another shape"


def _id_table(gm: Any) -> int | None:
    """The table size of the nn.Embedding that reads the module's input (its input is then integer ids), or None."""
    for n in gm.graph.nodes:
        if n.op == "placeholder":
            for u in n.users:
                if u.op == "call_module" and isinstance(gm.get_submodule(u.target), nn.Embedding):
                    return int(gm.get_submodule(u.target).num_embeddings)
    return None


def _shapes(gm: Any, module: Any, input_shape: tuple, dtype: str, where: str) -> dict:
    g, table = np.random.default_rng(0), _id_table(gm)
    x = torch.from_numpy(g.integers(0, table, input_shape) if table else g.uniform(-1, 1, input_shape).astype(dtype))
    sp = _ShapePass(gm)
    try:
        with torch.no_grad():
            sp.run(x)
    except _NodeFailed as f:
        n = f.node
        got = [sp.shapes.get(a) for a in n.args if isinstance(a, Node)]
        what = _expects(gm.get_submodule(n.target)) if n.op == "call_module" else "another shape"
        raise ShapeError(f"{where}: --input-shape {','.join(map(str, input_shape))} does not fit the module: node "
                         f"{n.name!r} expects {what} but is given {got[0] if got else '?'} "
                         f"({type(f.error).__name__}: {str(f.error).splitlines()[0] if str(f.error) else ''})") from None  # fmt: skip
    return sp.shapes

