"""The torch port as a voice, in process: `build` (forward, vjp and the timed step of the written model.py, loaded
by its own load()) and `train_step` (one torch.optim.Adam step on it, the weights read back as canonical ones).

    built = build(model, "float64")          # impls.model.voices.Built
    loss, weights = train_step(model, x, t)  # {(layer, weight): canonical array} after the step
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import frameworks
from ...contract.limits import Refused
from ...model import training
from ...model.description import Model
from ...model.voices import Built
from .code import VOICE, Code
from .files import grad_map, load_port, takes_ids
from .notes import notes_for, refusal


def build(model: Model, dtype: str = "float32") -> Built:
    """The port of `model` in `dtype`, in process; to_native / to_numpy convert canonical <-> the port's boundary."""
    why = refusal(model, dtype)
    if why is not None:
        raise Refused(f"{VOICE}: {why}")
    torch = frameworks.load("torch")
    from ...primitives.torch_impl import asarray, to_numpy

    net, code = load_port(model, dtype)
    params = dict(net.named_parameters())
    ids = takes_ids(model)
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
        return (None if dx is None else code.inputs.to_canonical(to_numpy(dx))), grad_map(code, model, named)

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
    from ...primitives.torch_impl import asarray, to_numpy

    net, code = load_port(model, dtype)
    net.eval()  # dropout off: every voice's step computes the same function
    stateful = bool(model.state())
    if stateful:  # BatchNorm normalises by the batch and moves running_mean / running_var
        for mod in net.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.train()
    opt = torch.optim.Adam(net.parameters(), lr=training.LR)
    in_dtype = model.input_dtype if takes_ids(model) else dtype
    y = _canonical_torch(torch, code, net(asarray(code.inputs.to_torch(np.asarray(x)), in_dtype)))
    loss = _loss(torch, training.loss_kind(model), y, asarray(t, dtype))
    opt.zero_grad()
    loss.backward()
    opt.step()
    named = {k: to_numpy(v) for k, v in net.state_dict().items()}
    return float(loss.detach()), grad_map(code, model, named, with_state=stateful)


__all__ = ["build", "train_step"]
