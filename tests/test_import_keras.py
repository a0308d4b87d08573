"""The Keras importer (impls/importers/keras_import.py) on Keras models built here: keras.io's simple MNIST convnet
saved to .keras and loaded back with safe_mode on, a GRU classifier with reset_after True and False, a functional
conv chain (strides, same, dilation, depthwise, zero padding, average pooling). Each imported description agrees with
the Keras model itself at the float32 bar, layer by layer too; every refusal and bad file is raised with its reason."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from impls import frameworks
from impls.contract.spec import ShapeError
from impls.contract.tolerance import assert_close
from impls.importers import BadInput, UnsupportedLayer, load
from impls.model.compose import reference_forward, reference_outputs
from impls.model.description import ModelError

keras_import = pytest.importorskip("impls.importers.keras_import")
keras_port = pytest.importorskip("impls.ports.keras_port")
keras = frameworks.load("keras")
L = keras.layers
BATCH = 3


def randomise(net, seed: int):
    """Seeded, non-symmetric weights and non-zero biases (Keras initialises biases to zero)."""
    g = np.random.default_rng(seed)
    net.set_weights([g.uniform(-0.4, 0.4, w.shape).astype(w.dtype) + (0.05 if w.ndim == 1 else 0.0)
                     for w in net.get_weights()])  # fmt: skip
    return net


def mnist_convnet():
    """keras.io/examples/vision/mnist_convnet, randomly initialised."""
    return randomise(keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        L.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        L.MaxPooling2D(pool_size=(2, 2)),
        L.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        L.MaxPooling2D(pool_size=(2, 2)),
        L.Flatten(),
        L.Dropout(0.5),
        L.Dense(10, activation="softmax"),
    ], name="mnist_convnet"), 1)  # fmt: skip


def gru_classifier(reset_after: bool, steps: int | None = 9):
    return randomise(keras.Sequential([
        keras.Input(shape=(steps, 5)),
        L.GRU(6, return_sequences=True, reset_after=reset_after, name="gru_a"),
        L.Dense(4, activation="tanh", name="per_step"),  # on the 3-D output's last axis
        L.GRU(3, reset_after=reset_after, name="gru_b"),
        L.Dense(4, activation="softmax", name="probs"),
    ], name=f"gru_{reset_after}"), 2)  # fmt: skip


def conv_chain():
    """A functional chain of the geometry options."""
    x = keras.Input(shape=(13, 11, 3))
    y = L.Conv2D(6, (3, 2), strides=(2, 1), padding="same", activation="tanh", name="strided")(x)
    y = L.ZeroPadding2D(((1, 0), (2, 1)), name="pad")(y)
    y = L.DepthwiseConv2D((2, 3), depth_multiplier=2, dilation_rate=(2, 1), activation="sigmoid", name="depthwise")(y)
    y = L.Conv2D(4, 3, dilation_rate=2, padding="same", groups=2, name="dilated")(y)
    y = L.ReLU(name="relu")(y)
    y = L.AveragePooling2D((2, 3), strides=(2, 2), padding="same", name="avg")(y)
    y = L.MaxPooling2D(2, strides=1, padding="valid", name="max")(y)
    y = L.Reshape((-1,), name="flat")(y)
    y = L.Dense(5, name="logits")(y)
    y = L.Softmax(name="softmax")(y)
    return randomise(keras.Model(x, y, name="conv_chain"), 3)


def data(shape: tuple, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.5, shape).astype("float32")


def agree(imported, net, x: np.ndarray) -> None:
    """The description (float64 reference), the Imported's own forward and the Keras model all agree, whole and
    per layer (accumulated and isolated)."""
    model = imported.model
    keras_y = np.asarray(net(x, training=False))
    ref = reference_forward(model, x.astype("float64"))
    assert_close(keras_y, ref, "float32", what=f"{model.name}: keras vs the imported description")
    assert_close(imported.forward(x), keras_y, "float32", what=f"{model.name}: Imported.forward vs keras")
    outs, refs = imported.layer_outputs(x), reference_outputs(model, x.astype("float64"))
    assert len(outs) == len(refs) == len(model.layers)
    inputs = [x.astype("float64"), *refs[:-1]]
    for i, (o, r) in enumerate(zip(outs, refs, strict=True)):
        assert_close(o, r, "float32", what=f"{model.layers[i].name} accumulated")
        assert_close(imported.layer_call(i, inputs[i]), r, "float32", what=f"{model.layers[i].name} isolated")


# --------------------------------------------------------------------------- models that import


def test_the_mnist_convnet_saved_as_keras_imports_and_agrees(tmp_path):
    net = mnist_convnet()
    path = tmp_path / "mnist.keras"
    net.save(path)
    imported = load(str(path))  # the dispatcher -> load_file, safe_mode on
    model = imported.model
    assert [la.kind for la in model.layers] == ["conv2d", "max_pool2d", "conv2d", "max_pool2d", "flatten", "dropout", "dense"]
    assert model.input_shape == (28, 28, 1) and model.source == "keras" and imported.path == str(path)
    assert model.layers[0].options["activation"] == "relu" and model.layers[-1].options["activation"] == "softmax"
    assert model.param_count() == net.count_params()
    agree(imported, net, data((BATCH, 28, 28, 1)))


@pytest.mark.parametrize("reset_after", [True, False])
def test_a_gru_classifier_imports_in_its_variant(reset_after, tmp_path):
    net = gru_classifier(reset_after)
    imported = keras_import.from_model(net, None, "test:gru")
    model = imported.model
    variant = "reset_after" if reset_after else "reset_before"
    assert [(la.kind, la.options.get("variant"), la.options.get("return_sequences")) for la in model.layers] == [
        ("gru", variant, True), ("dense", None, None), ("gru", variant, False), ("dense", None, None)]
    g = model.layers[0].weights
    bias = np.asarray(net.get_layer("gru_a").cell.bias)
    if reset_after:
        assert np.array_equal(g["b_x"], bias[0]) and np.array_equal(g["b_h"], bias[1])
    else:  # Keras' one bias is b_x; b_h = 0
        assert np.array_equal(g["b_x"], bias) and not np.any(g["b_h"]) and imported.notes
    agree(imported, net, data((BATCH, 9, 5)))


def test_a_functional_conv_chain_imports_and_agrees():
    net = conv_chain()
    imported = keras_import.from_model(net, (BATCH, 13, 11, 3), "test:conv")
    kinds = {la.name: (la.kind, la.options) for la in imported.model.layers}
    assert kinds["depthwise"][0] == "depthwise_conv2d" and kinds["depthwise"][1]["dilation"] == [2, 1]
    assert kinds["avg"] == ("avg_pool2d", {"pool_size": [2, 3], "strides": [2, 2], "padding": "same", "count_include_pad": False})
    assert kinds["flat"][0] == "flatten" and kinds["relu"] == ("activation", {"activation": "relu"})
    assert kinds["dilated"][1]["groups"] == 2
    agree(imported, net, data((BATCH, 13, 11, 3)))


def test_an_input_shape_sets_the_batch_and_must_fit_the_model():
    net = gru_classifier(True, steps=None)  # (None, None, 5): the time axis is unknown
    with pytest.raises(BadInput, match=r"test:gru.*--input-shape"):
        keras_import.from_model(net, None, "test:gru")
    imported = keras_import.from_model(net, (4, 11, 5), "test:gru")
    assert imported.model.input_shape == (11, 5)
    agree(imported, net, data((4, 11, 5)))
    with pytest.raises(ShapeError, match=r"test:gru.*\(4, 11, 6\).*\(None, None, 5\)"):
        keras_import.from_model(net, (4, 11, 6), "test:gru")
    with pytest.raises(ShapeError, match=r"\(3, 28, 28\).*\(None, 28, 28, 1\)"):
        keras_import.from_model(mnist_convnet(), (3, 28, 28), "test:mnist")


def test_an_unbuilt_sequential_needs_an_input_shape():
    with pytest.raises(BadInput, match=r"^t: the Sequential model 'late' has no input yet"):
        keras_import.from_model(keras.Sequential([L.Dense(4), L.Dense(2)], name="late"), None, "t")
    net = keras.Sequential([L.Dense(4, activation="relu"), L.Dense(2)], name="late")
    imported = keras_import.from_model(net, (BATCH, 6), "t")
    assert imported.model.input_shape == (6,)
    agree(imported, net, data((BATCH, 6)))


def test_a_python_file_naming_a_keras_model_imports(tmp_path):
    src = tmp_path / "net.py"
    src.write_text("import keras\n\ndef make():\n"
                   "    return keras.Sequential([keras.Input((4, 5, 2)), keras.layers.Flatten(), keras.layers.Dense(3)])\n")
    imported = load(f"{src}:make")
    assert imported.source == "keras" and imported.path == f"{src}:make"
    assert [la.kind for la in imported.model.layers] == ["flatten", "dense"]


def test_the_imported_mnist_convnet_ports_back_to_keras_and_agrees():
    net = mnist_convnet()
    model = keras_import.from_model(net, None, "t").model
    x = data((BATCH, 28, 28, 1), seed=8)
    port = keras_port.build(model, "float32")
    assert_close(port.forward(x), np.asarray(net(x, training=False)), "float32", what="keras -> description -> keras")


# --------------------------------------------------------------------------- refusals


def seq(*layers, shape=(8, 8, 3)):
    return keras.Sequential([keras.Input(shape=shape), *layers])


class Doubler(L.Layer):
    def call(self, x):
        return 2 * x


class MyDense(L.Dense):
    """A subclass is not the built-in layer: it could compute anything."""


UNSUPPORTED = {
    "simple_rnn": (lambda: seq(L.SimpleRNN(4, name="rnn"), shape=(5, 3)), r"layer 0 'rnn' \(keras.layers.SimpleRNN\)"),
    "batchnorm axis 1": (lambda: seq(L.Conv2D(2, 3), L.BatchNormalization(axis=1, name="bn")),
                         r"layer 1 'bn' .*BatchNormalization.*axis=1.*only the last axis"),
    "layernorm rms": (lambda: seq(L.LayerNormalization(rms_scaling=True, name="ln"), shape=(5, 4)), r"'ln'.*rms_scaling=True"),
    "global pool keepdims": (lambda: seq(L.GlobalAveragePooling1D(keepdims=True, name="gp"), shape=(5, 4)), r"'gp'.*keepdims=True"),
    "zero_pad1d": (lambda: seq(L.ZeroPadding1D(1, name="zp1"), shape=(9, 3)), r"layer 0 'zp1' .*ZeroPadding1D"),
    "custom": (lambda: seq(L.Flatten(), Doubler(name="twice")), r"layer 1 'twice' .*Doubler"),
    "subclass": (lambda: seq(L.Flatten(), MyDense(3, name="mine")), r"layer 1 'mine' .*MyDense"),
    "go_backwards": (lambda: seq(L.GRU(3, go_backwards=True, name="g"), shape=(5, 3)), r"'g'.*go_backwards=True"),
    "relu threshold": (lambda: seq(L.ReLU(threshold=0.5, name="rt")), r"'rt'.*threshold=0.5"),  # relu6 imports (issue 24)
    "softmax axis": (lambda: seq(L.Softmax(axis=1, name="sm")), r"'sm'.*axis=1"),
    "mish": (lambda: seq(L.Dense(3, activation="mish", name="d"), shape=(4,)), r"'d'.*activation='mish'"),  # gelu imports
    "leaky activation=": (lambda: seq(L.Dense(3, activation="leaky_relu", name="d"), shape=(4,)), r"'d'.*'leaky_relu'.*slope 0.2"),
    "gru tanh gates": (lambda: seq(L.GRU(3, recurrent_activation="hard_sigmoid", name="g"), shape=(5, 3)),
                       r"'g'.*recurrent_activation='hard_sigmoid'.*sigmoid"),
    "gru relu": (lambda: seq(L.GRU(3, activation="relu", name="g"), shape=(5, 3)), r"'g'.*activation='relu'.*tanh"),
    "gru no bias": (lambda: seq(L.GRU(3, use_bias=False, name="g"), shape=(5, 3)), r"'g'.*use_bias=False"),
    "channels_first": (lambda: seq(L.Conv2D(2, 3, data_format="channels_first", name="cf")), r"'cf'.*channels_first"),
    "flatten channels_first": (lambda: seq(L.Flatten(data_format="channels_first", name="fl")), r"'fl'.*channels_first"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(UNSUPPORTED))
def test_each_unsupported_layer_is_named(case):
    make, pattern = UNSUPPORTED[case]
    with pytest.raises(UnsupportedLayer, match=pattern) as e:
        keras_import.from_model(make(), None, "net.py:model")
    assert str(e.value).startswith("net.py:model: ")
    if case in ("simple_rnn", "zero_pad1d", "custom", "subclass"):
        assert "supported: keras.layers.InputLayer, keras.layers.Dense" in str(e.value)


def test_stateful_and_return_state_grus_are_refused():
    stateful = keras.Sequential([keras.Input(batch_shape=(3, 5, 2)), L.GRU(3, stateful=True, name="g")])
    with pytest.raises(UnsupportedLayer, match=r"'g'.*stateful=True"):
        keras_import.from_model(stateful, None, "t")
    x = keras.Input((5, 2))
    y, _ = L.GRU(3, return_state=True, name="g")(x)
    with pytest.raises(UnsupportedLayer, match=r"'g'.*return_state=True"):
        keras_import.from_model(keras.Model(x, y), None, "t")


def test_branches_import_and_several_inputs_outputs_or_a_shared_layer_are_a_later_step():
    """Issue 18: Add and Concatenate graphs import (they were refused as branches); several inputs or outputs and a
    layer called twice (shared weights) stay refused with the reason."""
    x = keras.Input((6,))
    a, b = L.Dense(3, name="a")(x), L.Dense(3, name="b")(x)
    for net, kind in ((keras.Model(x, L.Add(name="add")([a, b])), "add"),
                      (keras.Model(x, L.Concatenate(name="cat")([a, b])), "concatenate")):  # fmt: skip
        randomise(net, 3)
        m = keras_import.from_model(net, None, "t").model
        assert [la.kind for la in m.layers] == ["dense", "dense", kind] and m.layers[2].inputs == ("a", "b")
        assert m.layers[1].inputs == ("input",)
        xv = data((BATCH, 6), seed=4)
        assert_close(reference_forward(m, xv.astype("float64")), np.asarray(net(xv)), "float32")
    with pytest.raises(UnsupportedLayer, match="1 inputs and 2 outputs.*a later step"):
        keras_import.from_model(keras.Model(x, [a, b]), None, "t")
    x1, x2 = keras.Input((6,)), keras.Input((6,))
    two = keras.Model([x1, x2], L.Add()([L.Dense(6)(x1), x2]))
    with pytest.raises(UnsupportedLayer, match="2 inputs and 1 outputs.*a later step"):
        keras_import.from_model(two, None, "t")
    shared = L.Dense(6, name="shared")
    x = keras.Input((6,))
    with pytest.raises(UnsupportedLayer, match=r"'shared'.*2 places.*shares its weights.*a later step"):
        keras_import.from_model(keras.Model(x, shared(shared(x))), None, "t")


def test_non_finite_weights_name_the_tensor():
    net = gru_classifier(True)
    w = net.get_layer("probs").get_weights()
    w[0][1, 2] = np.nan
    net.get_layer("probs").set_weights(w)
    with pytest.raises(ModelError, match=r"^test:x: layer 3 'probs' \(dense\): weight 'kernel' has 1 non-finite"):
        keras_import.from_model(net, None, "test:x")


# --------------------------------------------------------------------------- bad files


@pytest.fixture(scope="module")
def real_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("keras_files") / "net.keras"
    gru_classifier(True).save(path)
    return path


def _one_line(e) -> str:
    text = str(e.value)
    assert "\n" not in text
    return text


def test_a_missing_file(tmp_path):
    with pytest.raises(BadInput) as e:
        keras_import.load_file(tmp_path / "nothing.keras", None)
    assert _one_line(e) == f"{tmp_path / 'nothing.keras'}: no such file"


def test_a_truncated_file(real_file, tmp_path):
    cut = tmp_path / "cut.keras"
    cut.write_bytes(real_file.read_bytes()[: real_file.stat().st_size // 2])
    with pytest.raises(BadInput, match="not a zip archive") as e:
        keras_import.load_file(cut, None)
    assert _one_line(e).startswith(f"{cut}: ")


def test_garbage_bytes(tmp_path):
    junk = tmp_path / "junk.keras"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(BadInput, match="not a zip archive") as e:
        keras_import.load_file(junk, None)
    assert _one_line(e).startswith(f"{junk}: ")


def test_a_zip_without_config(real_file, tmp_path):
    bare = tmp_path / "bare.keras"
    with zipfile.ZipFile(real_file) as src, zipfile.ZipFile(bare, "w") as dst:
        for name in src.namelist():
            if name != "config.json":
                dst.writestr(name, src.read(name))
    with pytest.raises(BadInput, match="no config.json") as e:
        keras_import.load_file(bare, None)
    assert _one_line(e).startswith(f"{bare}: ")


def test_a_zip_with_corrupt_weights(real_file, tmp_path):
    bad = tmp_path / "badweights.keras"
    with zipfile.ZipFile(real_file) as src, zipfile.ZipFile(bad, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name) if name != "model.weights.h5" else b"not hdf5 at all")
    with pytest.raises(BadInput, match="load_model failed") as e:
        keras_import.load_file(bad, None)
    assert _one_line(e).startswith(f"{bad}: ")


def test_a_file_with_a_custom_layer_names_it(tmp_path):
    path = tmp_path / "custom.keras"
    seq(L.Flatten(), L.Dense(3), Doubler(name="twice")).save(path)
    with pytest.raises(UnsupportedLayer, match=r"custom.keras: layer 2 'twice' \(class Doubler.*supported: ") as e:
        keras_import.load_file(path, None)
    _one_line(e)
