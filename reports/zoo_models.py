"""The model zoo of issue 24 as data: every model, its constructor and input shape (batch 3), and how it is saved as
its users have it. Nothing is downloaded: torchvision and keras.applications build with weights=None, ONNX's
`light_*.onnx` come with the installed onnx wheel.

    MODELS                          # [Entry], issue 24's list first, then models of the same families it does not list
    by_name("torchvision/resnet18")
    python -m reports.zoo_models prepare NAME FOLDER   # FOLDER/<source file>, x.npy, want.npy, spec.json

Weights are seeded and look trained where a default would hide a convention: a BatchNorm's running variance is
positive and not 1, its mean not 0, its scale not 1 and its offset not 0; every parameter a constructor fills with
one constant (zero biases, unit LayerNorm scales, ConvNeXt's 1e-6 layer scale) is drawn at random instead. torch's
source is a file.py with a zero-argument `make` (the seeding is in the file, so `nnparity` rebuilds the same model);
Keras' is the .keras file `model.save` writes; ONNX's is the light model with every ConstantOfShape weight (and
initializer) replaced by a seeded random initializer, batch 3. `prepare` also writes the input (x.npy, seeded, the
source's layout) and the source's own output on it (want.npy), computed from the saved file by the source's own
framework, and measures how far that float32 output is from the same source computing in float64 (torch's
`model.double()`, Keras' config with float64 dtype policies; ONNX's graph made float64 and run by the onnx package's
reference evaluator, reports/onnx_float64.py, as ONNX Runtime's CPU Conv is float32 only): the float32 error the
source itself has, against which a port's difference can be read. That float64 output is saved too
(want64.npy): a port run in float64 is compared with it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

BATCH = 3
SEED = 0
CALIBRATION_BATCH = 8
"""BatchNorm statistics are those of one batch of this many seeded inputs (not the compared input), then moved: a
trained model's statistics match its data, so activations keep their scale through a deep network (drawn at random
instead, a ResNet-50's logits grow until its softmax is one-hot and every comparison trivially agrees)."""


@dataclass(frozen=True)
class Entry:
    name: str  # "torchvision/resnet18", "keras/ResNet50", "onnx/resnet50"
    source: str  # "torch", "keras", "onnx"
    constructor: str  # as a user writes it
    input_shape: tuple[int, ...]  # batch first, in the source's own layout (NCHW for torch and ONNX, NHWC for Keras)
    listed: bool  # in issue 24's list (False: a model of the same family the issue does not list)
    low: float = -1.0  # the input's range (uniform); Keras models that rescale 0..255 inside take that range
    high: float = 1.0

    @property
    def file(self) -> str:
        return {"torch": "net.py", "keras": "net.keras", "onnx": "net.onnx"}[self.source]

    @property
    def spec(self) -> str:
        """What `nnparity certify` / `port` are pointed at (relative to the model's folder)."""
        return "net.py:make" if self.source == "torch" else self.file

    @property
    def shape_args(self) -> list[str]:
        """--input-shape where the source does not carry its shape (a torch module)."""
        return ["--input-shape", ",".join(map(str, self.input_shape))] if self.source == "torch" else []

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(t for t in ("torch", "keras", "onnx", "flax") if t != self.source)


def _tv(name: str, hw: int = 64, listed: bool = True, extra: str = "") -> Entry:
    return Entry(f"torchvision/{name}", "torch", f"torchvision.models.{name}(weights=None, num_classes=10{extra})",
                 (BATCH, 3, hw, hw), listed)  # fmt: skip


def _ka(name: str, hw: int = 64, listed: bool = True, pixels: bool = False) -> Entry:
    return Entry(f"keras/{name}", "keras",
                 f"keras.applications.{name}(weights=None, classes=10, input_shape=({hw}, {hw}, 3))",
                 (BATCH, hw, hw, 3), listed, *((0.0, 255.0) if pixels else (-1.0, 1.0)))  # fmt: skip


def _ox(name: str, listed: bool = True) -> Entry:
    return Entry(f"onnx/{name}", "onnx", f"onnx/backend/test/data/light/light_{name}.onnx, seeded weights, batch 3",
                 (BATCH, 3, 224, 224), listed)  # fmt: skip


MODELS: list[Entry] = [
    # issue 24's list
    _tv("alexnet"), _tv("vgg11", 32), _tv("resnet18"), _tv("resnet50"), _tv("squeezenet1_1"), _tv("densenet121"),
    _tv("mobilenet_v2"), _tv("mobilenet_v3_small"), _tv("mnasnet0_5"), _tv("shufflenet_v2_x0_5"),
    _tv("googlenet", extra=", aux_logits=False"), _tv("efficientnet_b0"), _tv("regnet_x_400mf"), _tv("convnext_tiny"),
    _ka("VGG16", 32), _ka("ResNet50"), _ka("MobileNet"), _ka("MobileNetV2"), _ka("MobileNetV3Small", pixels=True),
    _ka("EfficientNetB0", pixels=True), _ka("DenseNet121"), _ka("InceptionV3", 75), _ka("Xception", 71),
    _ka("ConvNeXtTiny", pixels=True),
    _ox("resnet50"), _ox("squeezenet"), _ox("vgg19"), _ox("bvlc_alexnet"), _ox("inception_v1"), _ox("densenet121"),
    # the same families, not listed: a zoo that passes only its own list is not done
    _tv("resnet34", listed=False), _tv("resnext50_32x4d", listed=False), _tv("vgg11_bn", 32, listed=False),
    _tv("squeezenet1_0", listed=False), _tv("mobilenet_v3_large", listed=False), _tv("mnasnet1_0", listed=False),
    _tv("shufflenet_v2_x1_0", listed=False), _tv("regnet_y_400mf", listed=False),
    _ka("ResNet101", listed=False), _ka("ResNet50V2", listed=False), _ka("DenseNet169", listed=False),
    _ka("VGG19", 32, listed=False), _ka("MobileNetV3Large", listed=False, pixels=True),
    _ka("EfficientNetV2B0", listed=False, pixels=True),
    _ox("inception_v2", listed=False), _ox("shufflenet", listed=False), _ox("zfnet512", listed=False),
]  # fmt: skip

SUBSET = ("torchvision/squeezenet1_1", "keras/VGG16", "onnx/squeezenet")
"""One model a source, for CI (tests/test_zoo.py): of those whose every port agreed in the full run (2026-12-07), the
cheapest with the most headroom under the bar (errors 1e-7 to 7e-7), each port target covered. Two a source
(alexnet, VGG19 and onnx shufflenet too) took 346 s of one pytest worker in a fresh-clone test run, the largest
single item of CI's 27 minutes; these three took 71, 140 and 33 s in the full run under a load of 10."""


def by_name(name: str) -> Entry:
    for e in MODELS:
        if e.name == name:
            return e
    raise KeyError(f"{name!r} is not in the zoo; it has {[e.name for e in MODELS]}")


# --------------------------------------------------------------------------- saving each as its users have it

TORCH_FILE = '''"""{constructor}: seeded; its BatchNorm statistics those of a batch of inputs (as a trained
model's match its data), then moved a little, and its constant-initialised parameters drawn at random (the nnparity
zoo's source file, reports/zoo_models.py)."""
import torch
import torchvision


def make():
    torch.manual_seed({seed})
    model = torchvision.models.{call}
    g = torch.Generator().manual_seed({seed} + 1)
    with torch.no_grad():
        for name, t in model.named_parameters():  # one constant (zeros, ones, a layer scale): drawn instead
            if t.numel() > 1 and bool((t == t.flatten()[0]).all()):
                c = float(t.flatten()[0])
                lo, hi = (-0.1, 0.1) if c == 0 else (0.8, 1.2) if c == 1 else (0.5, 1.5)
                t.uniform_(lo, hi, generator=g)
        bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        for m in bns:
            m.momentum = 1.0  # one training-mode pass: the running statistics become this batch's
        model.train()
        model(torch.empty({calibration}).uniform_({low}, {high}, generator=g))
        for m in bns:
            m.momentum = 0.1
            floor = 1e-3 * float(m.running_var.median()) + 1e-6
            m.running_var.clamp_(min=floor).mul_(torch.empty_like(m.running_var).uniform_(0.8, 1.25, generator=g))
            m.running_mean.add_(0.1 * m.running_var.sqrt() * torch.randn(m.running_mean.shape, generator=g))
    return model.eval()
'''


def torch_source(e: Entry) -> str:
    call = e.constructor.removeprefix("torchvision.models.")
    calibration = (CALIBRATION_BATCH, *e.input_shape[1:])
    return TORCH_FILE.format(constructor=e.constructor, call=call, seed=SEED, calibration=calibration, low=e.low,
                             high=e.high)  # fmt: skip


def _randomise_keras(model, e: Entry) -> None:
    """The torch file's drawing, in Keras: constant-initialised weights drawn; BatchNorm moving statistics those of a
    training-mode pass over one seeded batch (momentum 0 for that pass), then moved a little."""
    g = np.random.default_rng(SEED + 1)
    for layer in model._flatten_layers(include_self=False, recursive=True):
        for v in layer.weights:
            a = np.asarray(v.numpy())
            if not v.trainable or "float" not in str(v.dtype) or a.size <= 1 or not np.all(a == a.flat[0]):
                continue
            c = float(a.flat[0])
            lo, hi = (-0.1, 0.1) if c == 0 else (0.8, 1.2) if c == 1 else (0.5, 1.5)
            v.assign(g.uniform(lo, hi, a.shape).astype(a.dtype))
    keras = sys.modules["keras"]
    for la in _normalizations(model):  # Normalization's stored mean and variance (weights=None: zeros and ones)
        for v, (lo, hi) in ((la.adapt_mean, (-0.1, 0.1)), (la.adapt_variance, (0.5, 1.5))):
            a = np.asarray(v.numpy())
            if a.size and np.all(a == a.flat[0]):
                v.assign(g.uniform(lo, hi, a.shape).astype(a.dtype))
        la.finalize_state()  # `mean` and `variance` are tensors made from the variables here, not the variables
    bns = [la for la in model._flatten_layers(include_self=False, recursive=True)
           if isinstance(la, keras.layers.BatchNormalization)]  # fmt: skip
    kept = [la.momentum for la in bns]
    for la in bns:
        la.momentum = 0.0
    model(g.uniform(e.low, e.high, (CALIBRATION_BATCH, *e.input_shape[1:])).astype(np.float32), training=True)
    for la, momentum in zip(bns, kept, strict=True):
        la.momentum = momentum
        var = np.asarray(la.moving_variance.numpy())
        var = np.maximum(var, 1e-3 * float(np.median(var)) + 1e-6) * g.uniform(0.8, 1.25, var.shape)
        la.moving_variance.assign(var.astype(np.float32))
        mean = np.asarray(la.moving_mean.numpy()) + 0.1 * np.sqrt(var) * g.standard_normal(var.shape)
        la.moving_mean.assign(mean.astype(np.float32))


def _normalizations(model) -> list:
    """The model's Normalization layers that keep their statistics as weights (no mean/variance given to the
    constructor, as keras.applications' EfficientNet builds it): Keras 3 stores them in the non-trainable variables
    `adapt_mean` and `adapt_variance` and computes with `mean` and `variance`, tensors that `finalize_state` makes
    from them (at build, adapt and load_own_variables; not at `assign` or `set_weights`)."""
    keras = sys.modules["keras"]
    return [la for la in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(la, keras.layers.Normalization) and la.built and la.input_mean is None]  # fmt: skip


def _keras_float64(model):
    """The same Keras model computing in float64: its config with every dtype policy float64 (and its inputs', which
    are dtype strings: a float32 input layer would round a float64 input to float32), its weights cast.

    Two things Keras itself would leave in float32 or stale are set here. Rescaling's scale and offset are Python
    floats (or lists) that Rescaling.call gives to `tf.cast(value, float64)`, which converts a Python float to a
    float32 tensor first (TensorFlow issue 35938): EfficientNet's 1/255 became 0.003921568859368563, 5.9e-08 off,
    and the float64 model's logits 1.5e-06 off the same model with 1/255 (a float64 port computes the latter). They
    are given as float64 arrays, which the cast keeps. And a Normalization's `mean`/`variance` are remade from the
    weights set here (`finalize_state`), or the float64 model would normalise with its initial zeros and ones."""

    def f64(o):
        if isinstance(o, dict):
            if o.get("class_name") == "DTypePolicy":
                return {**o, "config": {**o["config"], "name": "float64"}}
            if o.get("class_name") == "InputLayer" and "float" in str(o["config"].get("dtype")):  # a dtype string
                return {**o, "config": {**o["config"], "dtype": "float64"}}
            return {k: f64(v) for k, v in o.items()}
        return [f64(v) for v in o] if isinstance(o, list) else o

    m64 = model.__class__.from_config(f64(model.get_config()))
    m64.set_weights([np.asarray(w, np.float64) for w in model.get_weights()])
    keras = sys.modules["keras"]
    for la in m64._flatten_layers(include_self=False, recursive=True):
        if isinstance(la, keras.layers.Rescaling):
            la.scale, la.offset = np.asarray(la.scale, np.float64), np.asarray(la.offset, np.float64)
    for la in _normalizations(m64):
        la.finalize_state()
    return m64


def _light_path(name: str) -> Path:
    import onnx

    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / f"light_{name}.onnx"


def _role_values(g: np.random.Generator, shape: tuple[int, ...], role: str) -> np.ndarray:
    if role == "weight":  # He-scaled, as a trained network's magnitudes
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else int(shape[0])
        return g.standard_normal(shape) * np.sqrt(2.0 / max(fan_in, 1))
    lo, hi = {"variance": (0.5, 1.5), "scale": (0.8, 1.2)}.get(role, (-0.1, 0.1))
    return g.uniform(lo, hi, shape)


def _roles(graph) -> dict[str, str]:
    """Which tensor feeds what: a Conv/Gemm weight, a BatchNorm's scale/offset/mean/variance, a scale (Mul) or
    an offset (Add, Sum, a bias); through Unsqueeze, what its output feeds."""
    roles: dict[str, str] = {}
    unsq = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Unsqueeze"}
    bn = {1: "scale", 2: "offset", 3: "offset", 4: "variance"}
    for n in graph.node:
        for k, t in enumerate(n.input):
            t = unsq.get(t, t)
            if n.op_type in ("Conv", "Gemm") and k == 1:
                roles[t] = "weight"
            elif n.op_type == "BatchNormalization" and k in bn:
                roles[t] = bn[k]
            elif n.op_type == "Mul":
                roles.setdefault(t, "scale")
            else:
                roles.setdefault(t, "offset")
    return roles


def onnx_source(e: Entry, out: Path) -> None:
    """light_NAME.onnx with seeded weights, batch 3: each ConstantOfShape weight becomes an initializer, each float
    initializer is redrawn by its role, the input's and output's batch and each Reshape's leading 1 become 3."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(_light_path(e.name.split("/", 1)[1])))
    g = np.random.default_rng(SEED + 1)
    graph = m.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    roles = _roles(graph)
    new_inits, nodes = [], []
    for n in graph.node:
        if n.op_type == "ConstantOfShape" and n.input[0] in inits:
            shape = tuple(int(d) for d in inits[n.input[0]])
            new_inits.append((n.output[0], shape))
            continue
        nodes.append(n)
    used = {t for n in nodes for t in n.input}
    kept = []
    for name, a in inits.items():
        if name not in used or name.endswith("__SHAPE"):
            continue
        if a.dtype.kind == "f":
            new_inits.append((name, a.shape))
        else:
            kept.append(numpy_helper.from_array(a, name))
    reshape_shapes = {n.input[1] for n in nodes if n.op_type == "Reshape"}
    arrays = []
    for name, shape in new_inits:
        arrays.append(numpy_helper.from_array(_role_values(g, shape, roles.get(name, "offset")).astype(np.float32), name))
    for t in kept:
        a = numpy_helper.to_array(t)
        if t.name in reshape_shapes and a.ndim == 1 and a.size and a[0] == 1 and not _constant_data(nodes, t.name, inits):
            a = a.copy()
            a[0] = BATCH
            t = numpy_helper.from_array(a, t.name)
        arrays.append(t)
    init_names = {t.name for t in arrays}
    data = [i for i in graph.input if i.name not in inits and i.name not in init_names]
    for vi in [*data, *graph.output]:
        vi.type.tensor_type.shape.dim[0].dim_value = BATCH
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(arrays)
    del graph.input[:]
    graph.input.extend(data)
    del graph.value_info[:]
    m.ir_version = max(m.ir_version, 4)  # initializers need not be listed among the inputs
    onnx.checker.check_model(m)
    _calibrate(m, g, e)
    onnx.save_model(m, str(out))


def _calibrate(m, g: np.random.Generator, e: Entry) -> None:
    """Each BatchNormalization's mean and variance: those of a training-mode pass over one seeded batch (a copy of
    the graph where each BatchNormalization reads its input's own per-channel statistics, which are its outputs),
    then moved a little; as the torch file and Keras do (CALIBRATION_BATCH)."""
    import copy

    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    cal = copy.deepcopy(m)
    nodes, stats = [], []
    for n in cal.graph.node:
        if n.op_type != "BatchNormalization":
            nodes.append(n)
            continue
        k = f"__zoo_{len(stats)}"
        nodes += [helper.make_node("ReduceMean", [n.input[0]], [f"{k}_m"], axes=[0, 2, 3], keepdims=1),
                  helper.make_node("Sub", [n.input[0], f"{k}_m"], [f"{k}_d"]),
                  helper.make_node("Mul", [f"{k}_d", f"{k}_d"], [f"{k}_sq"]),
                  helper.make_node("ReduceMean", [f"{k}_sq"], [f"{k}_v"], axes=[0, 2, 3], keepdims=1),
                  helper.make_node("Reshape", [f"{k}_m", "__zoo_flat"], [f"{k}_mf"]),
                  helper.make_node("Reshape", [f"{k}_v", "__zoo_flat"], [f"{k}_vf"])]  # fmt: skip
        stats.append((n.input[3], n.input[4], f"{k}_mf", f"{k}_vf"))
        n.input[3], n.input[4] = f"{k}_mf", f"{k}_vf"
        nodes.append(n)
    if not stats:
        return
    del cal.graph.node[:]
    cal.graph.node.extend(nodes)
    cal.graph.initializer.append(numpy_helper.from_array(np.array([-1], np.int64), "__zoo_flat"))
    cal.graph.output.extend(helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
                            for _, _, mf, vf in stats for name in (mf, vf))  # fmt: skip
    s = ort.InferenceSession(cal.SerializeToString(), providers=["CPUExecutionProvider"])
    x = g.uniform(e.low, e.high, e.input_shape).astype(np.float32)
    got = dict(zip([o.name for o in s.get_outputs()], s.run(None, {s.get_inputs()[0].name: x}), strict=True))
    inits = {t.name: t for t in m.graph.initializer}
    for mean_name, var_name, mf, vf in stats:
        var = np.maximum(got[vf], 1e-3 * float(np.median(got[vf])) + 1e-6) * g.uniform(0.8, 1.25, got[vf].shape)
        mean = got[mf] + 0.1 * np.sqrt(var) * g.standard_normal(var.shape)
        inits[var_name].CopyFrom(numpy_helper.from_array(var.astype(np.float32), var_name))
        inits[mean_name].CopyFrom(numpy_helper.from_array(mean.astype(np.float32), mean_name))


def _constant_data(nodes, shape_name: str, inits: dict) -> bool:
    """Whether the Reshape using `shape_name` reshapes a constant (a weight), not a computed tensor."""
    return any(n.op_type == "Reshape" and n.input[1] == shape_name and n.input[0] in inits for n in nodes)


def prepare(name: str, folder: Path) -> dict:
    """Write the model's source file, x.npy and want.npy into `folder`; returns the spec.json it writes."""
    from impls import frameworks

    e = by_name(name)
    folder.mkdir(parents=True, exist_ok=True)
    x = np.random.default_rng(SEED + 2).uniform(e.low, e.high, e.input_shape).astype(np.float32)
    np.save(folder / "x.npy", x)
    if e.source == "torch":
        frameworks.load("torchvision")  # its nms workaround, before the file imports it (as nnparity does)
        torch = frameworks.load("torch")
        import runpy

        (folder / e.file).write_text(torch_source(e))
        model = runpy.run_path(str(folder / e.file))["make"]()
        with torch.no_grad():
            want = model(torch.from_numpy(x)).numpy()
            want64 = model.double()(torch.from_numpy(x).double()).numpy()
    elif e.source == "keras":
        keras = frameworks.load("keras")
        keras.utils.set_random_seed(SEED)
        ctor = e.constructor.removeprefix("keras.applications.")
        model = eval(f"keras.applications.{ctor}", {"keras": keras})  # noqa: S307 (our own constructor text)
        _randomise_keras(model, e)
        model.save(folder / e.file)
        model = keras.saving.load_model(folder / e.file)
        want = np.asarray(model(x, training=False))
        want64 = np.asarray(_keras_float64(model)(x.astype(np.float64), training=False))
    else:
        frameworks.load("onnx")
        ort = frameworks.load("onnxruntime")
        onnx_source(e, folder / e.file)
        s = ort.InferenceSession(str(folder / e.file), providers=["CPUExecutionProvider"])
        want = s.run(None, {s.get_inputs()[0].name: x})[0]
        from . import onnx_float64  # ONNX Runtime's CPU Conv is float32 only: onnx's reference evaluator

        want64 = onnx_float64.run_float64(str(folder / e.file), x)
    want = np.asarray(want, np.float32)
    if want64 is not None and np.asarray(want64).dtype != np.float64:  # a policy that did not take: no float64 evidence
        want64 = None
    own = None if want64 is None else float(np.max(np.abs(want - want64)) / np.max(np.abs(want64)))
    np.save(folder / "want.npy", want)
    if want64 is not None:  # the ports' float64 outputs are compared with it (reports/zoo.py)
        np.save(folder / "want64.npy", np.asarray(want64, np.float64))
    spec = {**asdict(e), "spec": e.spec, "shape_args": e.shape_args, "targets": list(e.targets),
            "want_max_abs": float(np.max(np.abs(want))), "want_std": float(np.std(want)),
            "finite": bool(np.isfinite(want).all()), "own_float32_error": own}  # fmt: skip
    (folder / "spec.json").write_text(json.dumps(spec, indent=1))
    return spec


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "prepare":
        sys.exit("usage: python -m reports.zoo_models prepare NAME FOLDER")
    print(json.dumps(prepare(sys.argv[2], Path(sys.argv[3]))))
