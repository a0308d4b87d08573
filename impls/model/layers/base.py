"""What every kind of layer states about itself: its options, shapes, weights, counts, and how it computes.

A kind is one small module (gru.py, conv2d.py, ...) holding one `LayerSpec` subclass. The description, the voices,
the importers and the ports ask it; none of them knows a kind's facts on its own. Options arrive as plain
JSON-able values; `options()` fills defaults and refuses anything else with the option's name and value.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..errors import ModelError

ACTIVATIONS = ("linear", "relu", "softmax", "tanh", "sigmoid",
               # -- issue 24's activations (each exactly one function, no parameter: layers/activation.py)
               "relu6", "hard_sigmoid", "hard_swish", "silu", "gelu", "gelu_tanh")  # fmt: skip
"""The activations the contract verifies, as layers and as a layer's `activation=`."""
PARAMETERISED = ("leaky_relu", "clip")
"""Activations with parameters of their own (leaky_relu's negative_slope, clip's min and max): an activation layer's
only (a layer's `activation=` is a name)."""
ACTIVATION_OPS = tuple(a for a in ACTIVATIONS if a != "linear")
"""The op-contract functions an `activation=` may call (linear calls none)."""


class LayerSpec:
    KIND: ClassVar[str]
    DEFAULTS: ClassVar[dict[str, Any]] = {}
    REQUIRED: ClassVar[tuple[str, ...]] = ()
    ARITY: ClassVar[int] = 1
    """How many tensors it reads: 1, or 0 for a merge (add, concatenate: two or more, a list of shapes and arrays)."""
    STATE: ClassVar[tuple[str, ...]] = ()
    """Weights no gradient trains (a BatchNorm's moving statistics): Model.state(), not Model.parameters()."""
    OPS: ClassVar[tuple[str, ...]] = ()
    """The op-contract functions its forward calls on a backend (impls.backend(name)): every voice from primitives
    must offer each (impls/coverage.py checks; tests/test_layout.py checks the list is the whole truth)."""
    KEEPS_MASK: ClassVar[bool] = False
    """A (B, T) padding mask on the input passes on to the output (Keras' supports_masking for a layer that keeps the
    time axis: dense on 3-D, activation, dropout). A kind that makes a mask (embedding with mask_zero, masking) or reads
    one (the recurrent layers) overrides forward_masked and vjp_masked."""

    def options(self, raw: Any) -> dict[str, Any]:
        raw = dict(raw or {})
        unknown = sorted(set(raw) - set(self.DEFAULTS) - set(self.REQUIRED))
        if unknown:
            raise ModelError(f"{self.KIND}: unknown options {unknown}; it takes {sorted({*self.DEFAULTS, *self.REQUIRED})}")
        missing = [k for k in self.REQUIRED if k not in raw]
        if missing:
            raise ModelError(f"{self.KIND}: missing options {missing}")
        opts = {**self.DEFAULTS, **raw}
        if "activation" in opts and opts["activation"] not in ACTIVATIONS:
            raise ModelError(f"{self.KIND}: activation {opts['activation']!r} is not one of {ACTIVATIONS}")
        return self.validate(opts)

    def validate(self, opts: dict[str, Any]) -> dict[str, Any]:
        return opts

    def output_shape(self, opts: dict[str, Any], in_shape: tuple[int, ...]) -> tuple[int, ...]:
        raise NotImplementedError

    def weight_shapes(self, opts: dict[str, Any], in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {}

    def init(self, opts: dict[str, Any], in_shape: tuple[int, ...], seed: int, dtype: str = "float64") -> dict[str, np.ndarray]:
        """Seeded, non-symmetric weights with non-zero biases (for tests and the certificate's examples)."""
        g = np.random.default_rng(seed)
        out = {}
        for i, (name, shape) in enumerate(self.weight_shapes(opts, in_shape).items()):
            fan = max(int(np.prod(shape[:-1])) if len(shape) > 1 else int(shape[0]), 1)
            s = 1.0 / np.sqrt(fan)
            out[name] = (g.uniform(-s, s, shape) + (0.1 * s if i % 2 == 0 else -0.05 * s)).astype(dtype)
        return out

    def flops(self, opts: dict[str, Any], in_shape: tuple[int, ...]) -> int:
        """Forward FLOPs of the products (formulas.py's conventions); 0 where the layer has none."""
        return 0

    def op_weights(self, opts: dict[str, Any], w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The NumPy weights `forward` takes (a layer without a bias gets zeros): computed once, before a voice
        converts them to its own arrays."""
        return dict(w)

    def forward(self, ops: Any, x: Any, opts: dict[str, Any], w: dict[str, Any]) -> Any:
        """`w` is op_weights' answer in the backend's arrays. The layer over an op-contract backend (impls.backend(name)): its gru, conv2d, dense, ... only."""
        raise NotImplementedError

    def vjp(self, x: np.ndarray, opts: dict[str, Any], w: dict[str, np.ndarray], dy: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The NumPy reference's hand-written backward: (dL/dx, {weight name: dL/dweight})."""
        raise NotImplementedError

    def forward_masked(self, ops: Any, x: Any, mask: Any, opts: dict[str, Any], w: dict[str, Any]) -> tuple[Any, Any]:
        """(output, its mask or None): what compose chains. `mask` is the input's (B, T) bool padding mask or None."""
        return self.forward(ops, x, opts, w), (mask if self.KEEPS_MASK else None)

    def forward_train(self, x: np.ndarray, opts: dict[str, Any], w: dict[str, np.ndarray]) -> tuple[np.ndarray, dict]:
        """NumPy, in training mode: (output, {state weight: its value after the step}). The inference forward and no
        state by default; BatchNorm normalises by the batch and moves its statistics."""
        import impls.primitives.numpy_impl as ref

        return self.forward(ref, x, opts, w), {}

    def vjp_train(self, x, opts, w, dy) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
        """The backward of forward_train (gradients of the trainable weights only)."""
        return self.vjp(x, opts, w, dy)

    def makes_mask(self, opts: dict[str, Any], masked_input: bool) -> bool:
        """Whether the output carries a mask, given whether the input does (without computing anything)."""
        return masked_input and self.KEEPS_MASK

    def vjp_masked(self, x, mask, opts, w, dy) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
        return self.vjp(x, opts, w, dy)

    def check_input(self, opts: dict[str, Any], x: np.ndarray, where: str) -> None:
        """Data a model's first layer refuses before any voice sees it (an id outside an embedding's table, a
        pre-padded mask); `where` names the layer. Nothing by default."""


def positive_int(kind: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ModelError(f"{kind}: option {name} must be an int >= 1, got {value!r}")
    return int(value)


def int_pair(kind: str, name: str, value: Any) -> list[int]:
    vals = [value, value] if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else list(value)
    if len(vals) != 2:
        raise ModelError(f"{kind}: option {name} must be an int or a pair of ints, got {value!r}")
    return [positive_int(kind, name, v) for v in vals]


def padding_option(kind: str, value: Any) -> Any:
    """'valid', 'same' or [[top, bottom], [left, right]] (JSON lists); returned in the form the spec takes."""
    if isinstance(value, str):
        if value not in ("valid", "same"):
            raise ModelError(f"{kind}: padding {value!r} is not 'valid', 'same' or [[top, bottom], [left, right]]")
        return value
    try:
        (t, b), (l, r) = value
        pads = [[int(t), int(b)], [int(l), int(r)]]
    except (TypeError, ValueError):
        raise ModelError(f"{kind}: padding {value!r} is not 'valid', 'same' or [[top, bottom], [left, right]]") from None
    if min(t, b, l, r) < 0:
        raise ModelError(f"{kind}: explicit pads must be >= 0, got {value!r}")
    return pads


def spec_padding(padding: Any) -> Any:
    """The options' padding as impls.contract.spec takes it: a string, or ((t, b), (l, r)) tuples."""
    return padding if isinstance(padding, str) else tuple(tuple(p) for p in padding)


def flag(kind: str, name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ModelError(f"{kind}: option {name} must be true or false, got {value!r}")
    return bool(value)
