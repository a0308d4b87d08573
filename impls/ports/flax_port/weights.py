"""The Flax port's weight maps both ways: the canonical weights -> Flax's params tree (`params`) and "batch_stats"
collection (`batch_stats`), and a params tree (weights or gradients) -> the canonical weights (`canonical`).

Flax keeps the canonical layouts (conv2d HWIO, conv1d (K, C / groups, F), dense (in, out)); the translations are the
recurrent cells' folded biases (convert.gru_to_flax: the z and r gates' b_x + b_h; convert.lstm_to_flax: every gate's),
nn.Embed's "embedding", the depthwise kernel as a grouped one, and a norm's {scale, bias} beside its moving
statistics. variables.npz holds the trees flat (`arrays`: "layer/weight", "batch_stats:layer/mean"), and the built
voice loads the same arrays without the file. `names`: the Flax names to hold them under, a model of the same
structure's (a rebound build runs its first model's code, whose layers are named after that model's), by default
the model's own (flax_names).
"""

from __future__ import annotations

import numpy as np

from ... import convert
from ...contract.spec import GRUWeights, LSTMWeights
from ...model.description import Model
from ...model.layers.rnn import CELL_WEIGHTS
from .emit import NORMS, RECURRENT, backward_name, bidirectional, flax_names


def _cells(layer, name: str) -> list[tuple[str, str]]:
    """A recurrent layer's (Flax cell name, canonical weight suffix) per direction."""
    return [(name, ""), *([(backward_name(name), "_rev")] if bidirectional(layer) else [])]


_TO_FLAX = {"gru": lambda w: convert.gru_to_flax(GRUWeights(*w)), "lstm": lambda w: convert.lstm_to_flax(LSTMWeights(*w))}
_FROM_FLAX = {("gru", False): convert.gru_from_flax, ("gru", True): convert.gru_grads_from_flax,
              ("lstm", False): convert.lstm_from_flax, ("lstm", True): convert.lstm_grads_from_flax}


def params(model: Model, names: list[str] | None = None) -> dict[str, dict]:
    """The Flax params tree of `model`'s canonical weights (NumPy): {flax layer name: {...}}; a bidirectional
    layer's backward cell is its own entry, backward_name(name)."""
    out: dict[str, dict] = {}
    for layer, name in zip(model.layers, flax_names(model) if names is None else names, strict=True):
        w = {k: np.asarray(v) for k, v in layer.weights.items()}
        if layer.kind in RECURRENT:
            for cell, suffix in _cells(layer, name):
                out[cell] = _TO_FLAX[layer.kind]([w[k + suffix] for k in CELL_WEIGHTS])
                out |= {f"{cell}_{k}": w[k + suffix] for k in ("h0", "c0") if k + suffix in w}  # given initial states
        elif layer.kind == "embedding":
            out[name] = {"embedding": w["embeddings"]}
        elif layer.kind == "depthwise_conv2d":
            out[name] = {**w, "kernel": convert.depthwise_to_grouped(w["kernel"])}
        elif layer.kind == "separable_conv2d":  # SeparableConv's two nn.Conv
            out[name] = {"depthwise": {"kernel": convert.depthwise_to_grouped(w["depthwise_kernel"])},
                         "pointwise": {"kernel": w["pointwise_kernel"], **({"bias": w["bias"]} if "bias" in w else {})}}
        elif layer.kind in NORMS:
            tree = convert.norm_to_flax(w)[0]  # {scale, bias}; absent where the layer has neither
            if tree:
                out[name] = tree
        elif w:
            out[name] = dict(w)  # conv2d HWIO, conv1d (K, C / groups, F), dense (in, out): the canonical layouts
    return out


def batch_stats(model: Model, names: list[str] | None = None) -> dict[str, dict]:
    """Flax's "batch_stats" collection of `model`'s state: {flax layer name: {mean, var}} per batch_norm."""
    names = flax_names(model) if names is None else names
    return {name: convert.norm_to_flax({k: np.asarray(v) for k, v in layer.weights.items()})[1]
            for layer, name in zip(model.layers, names, strict=True) if layer.kind == "batch_norm"}


def canonical(model: Model, tree: dict, gradients: bool, stats: dict | None = None,
              names: list[str] | None = None) -> dict[tuple[str, str], np.ndarray]:
    """A Flax params tree (weights, or their gradients when `gradients`) -> {(layer, weight): canonical array}.
    A folded GRU or LSTM bias's gradient goes to both b_x and b_h of its gate (convert.gru_grads_from_flax,
    convert.lstm_grads_from_flax); read as weights, the folded sum is b_x and that b_h zero. `stats`: a
    "batch_stats" collection, read back as the BatchNorms' moving_mean / moving_var (without it, state is left out)."""
    out: dict[tuple[str, str], np.ndarray] = {}
    for layer, name in zip(model.layers, flax_names(model) if names is None else names, strict=True):
        if not layer.weights:
            continue
        if layer.kind in NORMS:
            got = convert.norm_from_flax(tree.get(name, {}), (stats or {}).get(name) if stats is not None else None)
            out |= {(layer.name, k): v for k, v in got.items() if k in layer.weights}
            continue
        if layer.kind in RECURRENT:
            for cell, suffix in _cells(layer, name):
                g = _FROM_FLAX[(layer.kind, gradients)]({k: {kk: np.asarray(vv) for kk, vv in v.items()}
                                                         for k, v in tree[cell].items()})
                out |= {(layer.name, k + suffix): np.asarray(getattr(g, k)) for k in CELL_WEIGHTS}
                out |= {(layer.name, k + suffix): np.asarray(tree[f"{cell}_{k}"]) for k in ("h0", "c0")
                        if k + suffix in layer.weights}  # fmt: skip
            continue
        node = {k: (dict(v) if isinstance(v, dict) else np.asarray(v)) for k, v in tree[name].items()}
        if layer.kind == "embedding":
            node = {"embeddings": node["embedding"]}
        if layer.kind == "depthwise_conv2d":
            node["kernel"] = convert.grouped_to_depthwise(node["kernel"], int(np.shape(layer.weights["kernel"])[2]))
        if layer.kind == "separable_conv2d":
            c = int(np.shape(layer.weights["depthwise_kernel"])[2])
            node = {"depthwise_kernel": convert.grouped_to_depthwise(np.asarray(node["depthwise"]["kernel"]), c),
                    "pointwise_kernel": node["pointwise"]["kernel"], **({"bias": node["pointwise"]["bias"]} if "bias" in node["pointwise"] else {})}
        out |= {(layer.name, k): np.asarray(node[k]) for k in layer.weights}
    return out


def flat(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """A nested tree as variables.npz holds it: {"layer/weight" (or "layer/cell/weight"): array}."""
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out |= flat(v, f"{prefix}{k}/")
        else:
            out[f"{prefix}{k}"] = np.asarray(v)
    return out


def arrays(model: Model, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """The variables as variables.npz holds them, in its order: the params flat ("layer/weight", "layer/cell/weight"),
    then the batch_stats ("batch_stats:layer/mean", "batch_stats:layer/var")."""
    return {**flat(params(model, names)), **{f"batch_stats:{k}": v for k, v in flat(batch_stats(model, names)).items()}}


__all__ = ["arrays", "batch_stats", "canonical", "flat", "params"]
