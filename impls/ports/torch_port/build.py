"""The torch port as a voice, in process: `build` (forward, vjp, the timed step, every layer's output, rebind) and
`train_step` (one torch.optim.Adam step on it, the weights read back as canonical ones).

    built = build(model, "float64")          # impls.model.voices.Built
    ys = built.outputs(x)                    # every layer's output, canonical, from one forward
    other = built.rebind(model2)             # model2 (same structure, other weights) through the same class
    loss, weights = train_step(model, x, t)  # {(layer, weight): canonical array} after the step

Nothing here writes a file: the generated model.py's text (the same text `write` writes) is exec'd as a module of
its own, its class instantiated as its load() does (`Cls().to(DTYPE)`, load_state_dict, eval) with the state dict
made of generate's arrays (the numbers weights.pt holds), so the module computes what the written port computes.
`outputs` runs the recording variant's forward (generate(..., taps=True), exec'd once a build, never written) on the
same module's weights, and converts each layer's output from the layout forward holds it in to the canonical one.
"""

from __future__ import annotations

import itertools
import types
from typing import Any

import numpy as np

from ... import frameworks
from ...contract.limits import Refused
from ...model import training
from ...model.description import Model
from ...model.voices import Built, structure
from .code import VOICE, Code, generate, restate
from .files import grad_map, takes_ids
from .notes import notes_for, refusal

_COUNTER = itertools.count()


def exec_source(source: str) -> types.ModuleType:
    """A generated model.py's text exec'd as a module of its own (a unique name: several ports live side by side)."""
    name = f"nnparity_torch_port_mem_{next(_COUNTER)}"
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}: the generated model.py>", "exec"), module.__dict__)  # noqa: S102  (generate's own text)
    return module


class Program:
    """The exec'd module of one generated model.py, and on first need its recording variant: what every build of a
    model of this structure shares (a rebound build too)."""

    def __init__(self, model: Model, code: Code):
        self.model, self.code = model, code
        self.module = exec_source(code.source)
        self._taps: Any = None

    def instance(self, code: Code) -> Any:
        """The module's class holding `code`'s state (code: this program's, or restate's of another model), as the
        written load() makes it."""
        torch = frameworks.load("torch")
        net = getattr(self.module, self.code.class_name)().to(self.module.DTYPE)
        net.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in code.state.items()})
        return net.eval()

    def recording(self) -> Any:
        """The recording variant's forward, `(module, x) -> (y, [every layer's output as held])`: a function of the
        module's attributes, which are the plain class's, so it runs on any instance of it."""
        if self._taps is None:
            code = self.code
            taps = generate(self.model, code.dtype, code.native_layout, taps=True)
            self._taps = getattr(exec_source(taps.source), taps.class_name).forward
        return self._taps


def in_memory(model: Model, dtype: str) -> tuple[Any, Code, Program]:
    """(the nn.Module that `write` writes for `model` in `dtype`, as its load() gives it, generate's Code, the
    Program), without a file."""
    code = generate(model, dtype)
    program = Program(model, code)
    return program.instance(code), code, program


def build(model: Model, dtype: str = "float32") -> Built:
    """The port of `model` in `dtype`, in process; to_native / to_numpy convert canonical <-> the port's boundary."""
    why = refusal(model, dtype)
    if why is not None:
        raise Refused(f"{VOICE}: {why}")
    net, code, program = in_memory(model, dtype)
    return _built(model, dtype, program, code, net)


def _built(model: Model, dtype: str, program: Program, code: Code, net: Any) -> Built:
    torch = frameworks.load("torch")
    from ...primitives.torch_impl import asarray, to_numpy

    params = {k: p for k, p in net.named_parameters() if p.requires_grad}  # a frozen BatchNorm weight is no parameter
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

    def outputs(x: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            _, taps = program.recording()(net, to_native(x))
        return [held.to_canonical(to_numpy(t)) for held, t in zip(code.held, taps, strict=True)]

    def rebind(other: Model) -> Built:
        if structure(other) != structure(model):
            raise ValueError(f"{VOICE}: rebind takes a model of the same structure as {model.name!r}'s")
        again = restate(program.code, other)
        return _built(other, dtype, program, again, program.instance(again))

    notes = [f"torch.nn module {code.class_name} from the generated model.py, {dtype}, in eval mode", *notes_for(model)]
    if len(model.input_shape) == 3:
        notes.append("images NCHW inside the module; a Linear after a flatten of a map has its rows in (c, h, w) order")
    return Built(VOICE, dtype, to_native, call, to_numpy_, vjp, step, "eager", notes, native_model=net,
                 dy_to_native=dy_to_native, outputs=outputs, rebind=rebind)


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

    net, code, _ = in_memory(model, dtype)
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


__all__ = ["Program", "build", "exec_source", "in_memory", "train_step"]
