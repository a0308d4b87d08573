"""The Flax port's emitters, one a layer kind, in a registry (EMITTERS), and what every emitter and the port's
refusal share: the line helpers (activation, padding, pairs), the layers' names in the Flax tree, the refusal.

An emitter is `fn(name, opts, in_shape, **extra) -> [lines of linen]` (extra: `masked` for a recurrent layer, `ins`,
the values read, for a merge), registered in its family's module as `@EMITTERS.register(kind, check=fn)`. `check`
is `fn(model, index, opts, dtype) -> reason | None`: the options of layer `index` the port cannot express; without
one, the port asks only impls/contract/limits.py (`limited`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

from ...contract import limits
from ...model.description import Model
from ...model.layers import spec_of
from ...registry import Registry

VOICE = "flax"
DTYPES = ("float32", "float64")
RECURRENT = ("gru", "lstm")
MERGES = ("add", "concatenate", "multiply")
MERGES += ("multi_head_attention",)  # issue 25: it reads (query, value[, key]) as a merge its sources
NORMS = ("batch_norm", "layer_norm")
EMITTERS = Registry("the Flax port", "layer kind")
Check = Callable[[Model, int, dict, str], str | None]  # a per-layer refusal: (model, index, opts, dtype) -> reason

_ACTIVATION = {"relu": "nn.relu(x)", "softmax": "nn.softmax(x, axis=-1)", "tanh": "jnp.tanh(x)",
               "sigmoid": "nn.sigmoid(x)",
               # -- issue 24's activations: jax.nn's own, each argument written out (hard_sigmoid is relu6(x + 3) / 6)
               "relu6": "jax.nn.relu6(x)", "hard_sigmoid": "jax.nn.hard_sigmoid(x)", "hard_swish": "jax.nn.hard_swish(x)",
               "silu": "jax.nn.silu(x)", "gelu": "jax.nn.gelu(x, approximate=False)",
               "gelu_tanh": "jax.nn.gelu(x, approximate=True)"}  # fmt: skip


# --------------------------------------------------------------------------- what the port can express


def declared(op: str, dtype: str, **options: Any) -> str | None:
    """impls/contract/limits.py's declared refusal of `op` (with the options as the op contract names them)."""
    return limits.refusal(VOICE, op, dtype, **options)


def limited(model: Model, index: int, opts: dict, dtype: str) -> str | None:
    """The check of a kind with no options the port cannot express: the declared limits of its op only."""
    return declared(model.layers[index].kind, dtype)


def refusal(model: Model, dtype: str) -> str | None:
    """Why the Flax port cannot express `model` in `dtype`, naming the layer; None when it can."""
    if str(dtype) not in DTYPES:
        return f"the Flax port builds float32 or float64 (float64 under jax_enable_x64), not {dtype}"
    for i, layer in enumerate(model.layers):
        entry = EMITTERS.get(layer.kind)
        if entry is None:
            why = EMITTERS.refusal(layer.kind) or (
                f"the Flax port has no layer for kind {layer.kind!r}; it writes {EMITTERS.supported()}")
            return f"{layer.label(i)}: {why}"
        why = entry.meta.get("check", limited)(model, i, spec_of(layer.kind).options(layer.options), dtype)
        if why is not None:
            return f"{layer.label(i)}: {why}"
    return None


def port_dtype(model: Model) -> str:
    """The dtype the port loads its params in by default: the source's input dtype where it is a float."""
    return model.input_dtype if model.input_dtype in DTYPES else "float32"


# --------------------------------------------------------------------------- line helpers


def pad(padding: Any) -> str:
    return f'"{padding.upper()}"' if isinstance(padding, str) else repr(tuple(tuple(p) for p in padding))


def pair(v: list[int]) -> str:
    return repr(tuple(v))


def act(opts: dict) -> list[str]:
    a = opts.get("activation", "linear")
    if a == "leaky_relu":
        return [f"x = jax.nn.leaky_relu(x, negative_slope={opts['negative_slope']!r})"]
    if a == "clip":
        return [f"x = jnp.clip(x, {opts['min']!r}, {opts['max']!r})"]
    if a == "hard_sigmoid" and (opts.get("alpha", 1 / 6), opts.get("beta", 0.5)) != (1 / 6, 0.5):
        return [f"x = jnp.clip(x * {opts['alpha']!r} + {opts['beta']!r}, 0.0, 1.0)  # hard_sigmoid, alpha and beta"]
    return [] if a == "linear" else [f"x = {_ACTIVATION[a]}"]


# --------------------------------------------------------------------------- names in the Flax tree


def backward_name(name: str) -> str:
    """The Flax name of a bidirectional layer's backward cell (the forward one is the layer's own name)."""
    return f"{name}_backward"


def bidirectional(layer) -> bool:
    return layer.kind in RECURRENT and spec_of(layer.kind).options(layer.options)["direction"] == "bidirectional"


def flax_names(model: Model) -> list[str]:
    """Each layer's name in the Flax tree: the source's name made an identifier, unique (a bidirectional layer's
    backward cell, backward_name(name), too)."""
    out: list[str] = []
    taken: set[str] = set()
    for layer in model.layers:
        base = re.sub(r"\W", "_", layer.name) or layer.kind
        base = f"_{base}" if base[0].isdigit() else base
        name = base
        for n in itertools.count(1):
            if name not in taken and not (bidirectional(layer) and backward_name(name) in taken):
                break
            name = f"{base}_{n}"
        out.append(name)
        taken |= {name, *([backward_name(name)] if bidirectional(layer) else [])}
    return out


def masked(model: Model) -> bool:
    """Whether a padding mask reaches a recurrent layer (the generated code then needs its helpers)."""
    return any(s is not None and la.kind in RECURRENT for s, la in zip(model.mask_sources(), model.layers, strict=True))


def has_state(model: Model) -> bool:
    """Whether the model holds state (a BatchNorm's moving statistics: Flax's "batch_stats" collection)."""
    return bool(model.state())


__all__ = ["DTYPES", "EMITTERS", "MERGES", "NORMS", "RECURRENT", "VOICE", "Check", "act", "backward_name",
           "bidirectional", "declared", "flax_names", "has_state", "limited", "masked", "pad", "pair", "port_dtype",
           "refusal"]
