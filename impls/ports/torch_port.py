"""The torch port (voice "torch_nn"): a model description -> a folder with model.py (an nn.Module that imports only
torch) and weights.pt (its state dict of plain tensors), `from model import load; m = load()`.

    why = refusal(model, "float32")          # None, or what torch.nn cannot express, naming the layer
    files = write(model, Path("out"))        # [out/model.py, out/weights.pt]
    built = build(model, "float64")          # that same port, imported: forward, vjp, step
    loss, weights = train_step(model, x, t)  # one torch.optim.Adam step on the port, weights back to canonical

`build` writes the port to a temporary folder and imports it with its own `load()`, so the voice the certificate
measures is the file a user gets. The code itself is impls/ports/torch_code.py's.
"""

from __future__ import annotations

import importlib.util
import itertools
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .. import GRU_VARIANTS, frameworks
from ..contract.limits import Refused
from ..model import training
from ..model.description import Model
from ..model.voices import Built
from . import torch_code
from .torch_code import DTYPES, Code, generate, port_dtype

VOICE = "torch_nn"
FILES = ("model.py", "weights.pt")
_COUNTER = itertools.count()


def refusal(model: Model, dtype: str) -> str | None:
    """Why the torch port cannot express `model` in `dtype`, naming the layer; None when it can."""
    if str(dtype) not in DTYPES:
        return f"the torch port computes in {' or '.join(DTYPES)}, not {dtype}"
    for i, layer in enumerate(model.layers):
        if layer.kind == "gru":
            variant = layer.options.get("variant", "reset_after")
            if variant not in GRU_VARIANTS[VOICE]:
                return (f"{layer.label(i)}: torch.nn.GRU computes only {', '.join(GRU_VARIANTS[VOICE])} (r multiplies "
                        f"h U_h + b_hh); the variant {variant!r} has no torch.nn layer")  # fmt: skip
        if layer.kind == "batch_norm":
            center, scale = layer.options.get("center", True), layer.options.get("scale", True)
            if center != scale:
                return (f"{layer.label(i)}: center={center}, scale={scale}; torch's BatchNorm has both gamma and beta "
                        "(affine=True) or neither (affine=False)")  # fmt: skip
        if layer.kind == "layer_norm" and layer.options.get("center", True) and not layer.options.get("scale", True):
            return (f"{layer.label(i)}: center=True with scale=False; torch's LayerNorm has a bias only beside its "
                    "weight (elementwise_affine=False drops both)")  # fmt: skip
    return None


def _biased_batch_norms(model: Model) -> list[str]:
    """The BatchNorm layers whose moving variance moves with the biased batch variance (Keras, Flax): torch's
    BatchNorm moves running_var with the unbiased one, so their port is forward-exact only."""
    return [la.label(i) for i, la in enumerate(model.layers)
            if la.kind == "batch_norm" and la.options.get("variance_update", "biased") == "biased"]  # fmt: skip


def _takes_ids(model: Model) -> bool:
    return bool(np.issubdtype(np.dtype(model.input_dtype), np.integer))


def notes_for(model: Model) -> list[str]:
    """What the port translates for the sequence kinds, for the certificate."""
    notes, masked = [], model.mask_sources()
    for i, layer in enumerate(model.layers):
        if layer.kind not in torch_code.RECURRENT:
            continue
        opts = layer.options
        bi = opts.get("direction", "forward") == "bidirectional"
        if masked[i] is not None:
            hold = opts.get("padded_outputs", "zero") == "hold"
            notes.append(f"{layer.label(i)}: padded rows packed (pack_padded_sequence, enforce_sorted=False; "
                         "pad_packed_sequence zero-fills padded steps"
                         + ("; padded steps then hold the last valid output by a gather" if hold else "")
                         + "); torch refuses a row of length 0, so such a row runs one step and is zeroed, the "
                         "description's output for it")  # fmt: skip
        if bi and not opts.get("return_sequences", False):
            notes.append(f"{layer.label(i)}: the final states are h_n's (forward h[0], backward h[1], the backward "
                         "after step 0), not out[:, -1]")  # fmt: skip
        if bi and opts.get("merge_mode", "concat") != "concat":
            notes.append(f"{layer.label(i)}: merge_mode {opts['merge_mode']!r} from torch's concatenated halves")
        if layer.kind == "lstm":
            notes.append(f"{layer.label(i)}: nn.LSTM keeps both biases (bias_ih, bias_hh) as the description does: "
                         "training-exact")  # fmt: skip
    for i, layer in enumerate(model.layers):
        if layer.kind == "batch_norm":
            m = float(layer.options.get("momentum", 0.99))
            notes.append(f"{layer.label(i)}: nn.BatchNorm{'2d' if len(model.input_shapes(1)[i]) == 4 else '1d'} with "
                         f"momentum={torch_code.torch_momentum(m)!r} (torch's share of the new batch statistic; the "
                         f"description keeps {m!r} of the old)")  # fmt: skip
        if layer.kind == "layer_norm" and len(model.input_shapes(1)[i]) > 2 and len(model.input_shape) >= 2:
            notes.append(f"{layer.label(i)}: nn.LayerNorm normalises its input's last axis: a channels-first map is "
                         "permuted channels-last around it")  # fmt: skip
    for label in _biased_batch_norms(model):
        notes.append(f"{label}: forward-exact only: the description moves the moving variance with the biased batch "
                     "variance (variance_update 'biased', Keras' and Flax's); torch's BatchNorm moves running_var with "
                     "the unbiased one (n / (n - 1) times it): a training step moves it in torch's convention")  # fmt: skip
    if model.layers and model.layers[0].kind == "embedding":
        notes.append(f"{model.layers[0].label(0)}: forward refuses an id outside the table with a ValueError naming the "
                     "id and the table size (torch's IndexError names neither)")  # fmt: skip
    return notes


def write(model: Model, out: Path, native_layout: bool = False) -> list[Path]:
    """Write the port at `out` (a folder): model.py and weights.pt, in the weights' own dtype (port_dtype)."""
    return _write(model, Path(out), native_layout, None)[0]


def _write(model: Model, out: Path, native_layout: bool, dtype: str | None) -> tuple[list[Path], Code]:
    torch = frameworks.load("torch")
    code = generate(model, dtype, native_layout)
    out.mkdir(parents=True, exist_ok=True)
    src, weights = out / FILES[0], out / FILES[1]
    src.write_text(code.source)
    torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in code.state.items()}, weights)
    return [src, weights], code


def _import(folder: Path) -> Any:
    """The written model.py as a module of its own (a unique name: several ports live side by side)."""
    name = f"nnparity_torch_port_{next(_COUNTER)}"
    spec = importlib.util.spec_from_file_location(name, folder / FILES[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_port(model: Model, dtype: str, native_layout: bool = False) -> tuple[Any, Code]:
    """(the nn.Module that `write` writes for `model` in `dtype`, loaded by the port's own load(), and its Code)."""
    with tempfile.TemporaryDirectory(prefix="nnparity-torch-port-") as tmp:
        _, code = _write(model, Path(tmp), native_layout, dtype)
        net = _import(Path(tmp)).load()
    return net, code


def state_dict(model: Model, dtype: str | None = None) -> dict[str, np.ndarray]:
    """The port's state dict of `model`'s canonical weights (NumPy, torch's layouts): no torch needed."""
    return generate(model, dtype).state


def canonical(model: Model, named: dict[str, np.ndarray], code: Code | None = None) -> dict[tuple[str, str], np.ndarray]:
    """{state key: torch-layout array} (weights or their gradients: the maps are permutations and transposes) ->
    {(layer, weight): canonical array} for every parameter of the model."""
    return _grad_map(generate(model) if code is None else code, model, named)


def _grad_map(code: Code, model: Model, named: dict[str, np.ndarray],
              with_state: bool = False) -> dict[tuple[str, str], np.ndarray]:  # fmt: skip
    """{state key: torch-layout array} -> {(layer, weight): canonical array} for every parameter of the model (and,
    with_state, every state weight: a BatchNorm's moving statistics)."""
    out = {}
    for layer in model.layers:
        if layer.weights:
            out |= {(layer.name, k): v for k, v in code.back(layer.name, named).items()}
    keys = [*model.parameters(), *(model.state() if with_state else ())]
    return {k: out[k] for k in keys}


def build(model: Model, dtype: str = "float32") -> Built:
    """The port of `model` in `dtype`, in process; to_native / to_numpy convert canonical <-> the port's boundary."""
    why = refusal(model, dtype)
    if why is not None:
        raise Refused(f"{VOICE}: {why}")
    torch = frameworks.load("torch")
    from ..primitives.torch_impl import asarray, to_numpy

    net, code = load_port(model, dtype)
    params = dict(net.named_parameters())
    ids = _takes_ids(model)
    in_dtype = model.input_dtype if ids else dtype  # token ids stay integers

    def to_native(x: np.ndarray) -> Any:
        return asarray(code.inputs.to_torch(np.asarray(x)), in_dtype)

    def call(x: Any) -> Any:
        with torch.no_grad():
            return net(x)

    def to_numpy_(y: Any) -> np.ndarray:
        return code.outputs.to_canonical(to_numpy(y))

    def step(x: Any, dy: Any) -> Any:
        if ids:  # integer ids have no gradient: (None, every parameter's)
            with torch.enable_grad():
                return (None, *torch.autograd.grad(net(x), list(params.values()), dy))
        xl = x.detach().requires_grad_(True)
        with torch.enable_grad():
            return torch.autograd.grad(net(xl), [xl, *params.values()], dy)

    def dy_to_native(dy: np.ndarray) -> Any:
        return asarray(code.outputs.to_torch(np.asarray(dy)), dtype)

    def vjp(x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, dict[tuple[str, str], np.ndarray]]:
        xn = to_native(x)
        dyn = dy_to_native(dy)
        dx, *gs = step(xn, dyn)
        named = {k: to_numpy(g) for k, g in zip(params, gs, strict=True)}
        return (None if dx is None else code.inputs.to_canonical(to_numpy(dx))), _grad_map(code, model, named)

    notes = [f"torch.nn module {code.class_name} from the generated model.py, {dtype}, in eval mode", *notes_for(model)]
    if len(model.input_shape) == 3:
        notes.append("images NCHW inside the module; a Linear after a flatten of a map has its rows in (c, h, w) order")
    return Built(VOICE, dtype, to_native, call, to_numpy_, vjp, step, "eager", notes, native_model=net,
                 dy_to_native=dy_to_native)


def _loss(torch: Any, kind: str, y: Any, t: Any) -> Any:
    """torch's own loss functions on the canonical-layout output: NLL of the log-probabilities against the one-hot
    targets' classes (the mean over every other axis), or the mean squared error."""
    F = torch.nn.functional
    if kind == "categorical_crossentropy":
        c = y.shape[-1]
        flat = t.reshape(-1, c)
        if not bool(torch.all((flat == 0) | (flat == 1))) or not bool(torch.all(flat.sum(-1) == 1)):
            raise ValueError(f"torch port train_step: cross-entropy targets must be one-hot over the last axis ({c} classes)")
        return F.nll_loss(torch.log(y).reshape(-1, c), flat.argmax(-1))
    if kind == "mse":
        return F.mse_loss(y, t)
    raise ValueError(f"unknown loss {kind!r}; losses: {training.LOSSES}")


def _canonical_torch(torch: Any, code: Code, y: Any) -> Any:
    """The port's output as a tensor in the canonical layout (autograd flows through)."""
    if code.outputs.kind == "nchw":
        return y.permute(0, 2, 3, 1)
    if code.outputs.kind == "ncw":
        return y.permute(0, 2, 1)
    if code.outputs.kind == "chw":
        h, w, c = code.outputs.feature
        return y.reshape(-1, c, h, w).permute(0, 2, 3, 1).reshape(y.shape[0], -1)
    return y


def train_step(model: Model, x: np.ndarray, t: np.ndarray, dtype: str = "float64") -> tuple[float, dict[tuple[str, str], np.ndarray]]:
    """One torch.optim.Adam step (torch's defaults, eps 1e-8; lr training.LR) on the port, dropout off, on the loss
    training.loss_kind names. Returns (the loss before the step, every canonical weight after it). A model with
    BatchNorm steps with its BatchNorm modules in train mode (the batch's statistics; dropout still off) and returns
    their moving statistics after the step too, (layer, "moving_mean" / "moving_var"). torch's BatchNorm moves
    running_var with the unbiased batch variance whatever the description's variance_update: a 'biased' layer's step is
    torch's own (nnparity/trainref.py compares it with the reference step in torch's convention, and says so)."""
    torch = frameworks.load("torch")
    from ..primitives.torch_impl import asarray, to_numpy

    net, code = load_port(model, dtype)
    net.eval()  # dropout off: every voice's step computes the same function
    stateful = bool(model.state())
    if stateful:  # BatchNorm normalises by the batch and moves running_mean / running_var
        for mod in net.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.train()
    opt = torch.optim.Adam(net.parameters(), lr=training.LR)
    in_dtype = model.input_dtype if _takes_ids(model) else dtype
    y = _canonical_torch(torch, code, net(asarray(code.inputs.to_torch(np.asarray(x)), in_dtype)))
    loss = _loss(torch, training.loss_kind(model), y, asarray(t, dtype))
    opt.zero_grad()
    loss.backward()
    opt.step()
    named = {k: to_numpy(v) for k, v in net.state_dict().items()}
    return float(loss.detach()), _grad_map(code, model, named, with_state=stateful)


__all__ = ["FILES", "VOICE", "build", "canonical", "load_port", "notes_for", "port_dtype", "refusal", "state_dict", "torch_code", "train_step", "write"]
