"""The Keras importer on sequence models (Embedding, Masking, LSTM, GRU, Bidirectional under Keras' own padding
masks): each imports from a .keras file and from the live keras.Model, its description agrees with the Keras model
on post-padded inputs of varied lengths (a row of length 0 included), at the float32 bar, and in float64 within 1e-10
where Keras builds the model in float64; what the description has no layer for is refused with the reason. The
written Keras port of the main pattern loads back in a fresh `python -I` without nnparity and agrees with the source."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from impls import frameworks
from impls.contract.tolerance import assert_close
from impls.importers import UnsupportedLayer, load
from impls.model.compose import reference_forward

keras_import = pytest.importorskip("impls.importers.keras_import")
keras_port = pytest.importorskip("impls.ports.keras_port")
keras = frameworks.load("keras")
L = keras.layers
T = 6
LENGTHS = [6, 3, 1, 0]


def randomise(net, seed: int):
    g = np.random.default_rng(seed)
    for v in net.weights:
        v.assign(g.uniform(-0.6, 0.6, tuple(v.shape)).astype(v.dtype))
    return net


def ids(seed: int = 0, vocab: int = 50) -> np.ndarray:
    x = np.random.default_rng(seed).integers(1, vocab, (len(LENGTHS), T)).astype("int32")
    for b, n in enumerate(LENGTHS):
        x[b, n:] = 0
    return x


def padded(features: int, seed: int = 1, dtype: str = "float32") -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((len(LENGTHS), T, features)).astype(dtype)
    for b, n in enumerate(LENGTHS):
        x[b, n:] = 0.0
    return x


def pattern(merge: str = "concat", dtype: str = "float32", seed: int = 3):
    """The Keras pattern: ids -> Embedding(50, 8, mask_zero) -> Bidirectional(LSTM(6)) -> Dense(5, softmax)."""
    inp = keras.Input((T,), dtype="int32")
    y = L.Embedding(50, 8, mask_zero=True, dtype=dtype)(inp)
    y = L.Bidirectional(L.LSTM(6, dtype=dtype), merge_mode=merge, dtype=dtype)(y)
    y = L.Dense(5, activation="softmax", dtype=dtype)(y)
    return randomise(keras.Model(inp, y, name=f"seq_{merge}"), seed)


def agree(imported, net, x, dtype="float32", bar=None):
    model = imported.model
    ref = reference_forward(model.astype("float64"), x if x.dtype.kind == "i" else x.astype("float64"))
    ky = np.asarray(keras.ops.convert_to_numpy(net(x, training=False)))
    if bar is None:
        assert_close(ky, ref, dtype, what=f"{model.name}: keras vs the imported description")
    else:
        assert float(np.max(np.abs(ky - ref))) < bar, f"{model.name}: {np.max(np.abs(ky - ref)):.3g}"
    assert_close(imported.forward(x), ky, dtype, what=f"{model.name}: Imported.forward vs keras")
    return float(np.max(np.abs(ky - ref)))


def test_the_pattern_saved_as_keras_imports_agrees_and_its_port_loads_without_nnparity(tmp_path):
    net = pattern()
    path = tmp_path / "seq.keras"
    net.save(path)
    imported = load(str(path))
    model = imported.model
    assert model.input_dtype == "int32" and [la.kind for la in model.layers] == ["embedding", "lstm", "dense"]
    lstm = model.layers[1]
    assert lstm.options["direction"] == "bidirectional" and lstm.options["merge_mode"] == "concat"
    assert not np.any(lstm.weights["b_h"]) and not np.any(lstm.weights["b_h_rev"])  # Keras' one bias is b_x
    assert model.mask_sources() == [None, 0, None]
    x = ids()
    agree(imported, net, x)
    assert_close(imported.forward(x)[3], reference_forward(model.astype("float64"), x)[3], "float32")  # length 0
    # the written port, alone in a fresh interpreter
    port = tmp_path / "port.keras"
    keras_port.write(model, port)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "want.npy", np.asarray(net(x)))
    script = textwrap.dedent(f"""
        import sys, numpy as np, keras
        assert not any(m.startswith(("impls", "nnparity")) for m in sys.modules)
        net = keras.saving.load_model({str(port)!r})
        x = np.load({str(tmp_path / 'x.npy')!r})
        y = np.asarray(net(x))
        assert not any(m.startswith(("impls", "nnparity")) for m in sys.modules)
        print(float(np.max(np.abs(y - np.load({str(tmp_path / 'want.npy')!r})))))
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ""}
    out = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.strip().splitlines()[-1]) < 1e-6


def test_the_pattern_in_float64_agrees_within_1e_10():
    net = pattern(dtype="float64")
    imported = keras_import.from_model(net, None, "test:seq64")
    assert agree(imported, net, ids(), "float64", bar=1e-10) < 1e-10


@pytest.mark.parametrize("merge", ["sum", "ave", "mul"])
def test_every_merge_mode_imports_and_agrees(merge):
    net = pattern(merge, seed=4)
    imported = keras_import.from_model(net, None, f"test:{merge}")
    assert imported.model.layers[1].options["merge_mode"] == merge
    agree(imported, net, ids(1))


@pytest.mark.parametrize("zero", [True, False])
def test_a_stacked_masked_lstm_imports_its_padded_outputs(zero, tmp_path):
    """Embedding(mask_zero) -> LSTM(return_sequences, zero_output_for_mask) -> Dense on the steps -> LSTM: the
    padded steps of the first layer are zeros or held, as Keras' zero_output_for_mask says (saved and loaded)."""
    net = randomise(keras.Sequential([keras.Input((T,), dtype="int32"), L.Embedding(20, 5, mask_zero=True),
                                      L.LSTM(4, return_sequences=True, zero_output_for_mask=zero),
                                      L.Dense(3, activation="tanh"), L.LSTM(3), L.Dense(2)]), 5)  # fmt: skip
    path = tmp_path / "stack.keras"
    net.save(path)
    imported = load(str(path))
    model = imported.model
    assert model.layers[1].options["padded_outputs"] == ("zero" if zero else "hold")
    assert model.mask_sources() == [None, 0, 0, 0, None]
    x = ids(2, 20)
    agree(imported, net, x)
    outs = imported.layer_outputs(x)
    assert (np.abs(outs[1][1, 3:]).max() == 0) == zero  # row 1 has 3 valid steps: its padded steps


def test_masking_then_gru_imports_and_agrees():
    net = randomise(keras.Sequential([keras.Input((T, 4)), L.Masking(0.0),
                                      L.GRU(3, return_sequences=True, reset_after=False), L.GRU(2)]), 6)  # fmt: skip
    imported = keras_import.from_model(net, None, "test:masking")
    kinds = [(la.kind, la.options.get("padded_outputs"), la.options.get("variant")) for la in imported.model.layers]
    assert kinds == [("masking", None, None), ("gru", "hold", "reset_before"), ("gru", "zero", "reset_after")]
    agree(imported, net, padded(4))


def test_an_unmasked_lstm_keeps_the_default_padded_outputs():
    net = randomise(keras.Sequential([keras.Input((T, 4)), L.LSTM(3, return_sequences=True), L.LSTM(2)]), 7)
    imported = keras_import.from_model(net, None, "test:plain")
    assert [la.options["padded_outputs"] for la in imported.model.layers] == ["zero", "zero"]
    agree(imported, net, padded(4))


def test_an_explicit_mirror_backward_layer_imports():
    inp = keras.Input((T,), dtype="int32")
    y = L.Embedding(30, 4, mask_zero=True)(inp)
    y = L.Bidirectional(L.GRU(3, return_sequences=True), backward_layer=L.GRU(3, return_sequences=True, go_backwards=True),
                        merge_mode="sum")(y)  # fmt: skip
    y = L.LSTM(2)(y)
    net = randomise(keras.Model(inp, y), 8)
    imported = keras_import.from_model(net, None, "test:mirror")
    assert imported.model.layers[1].options["padded_outputs"] == "zero"  # Bidirectional forces zero_output_for_mask
    agree(imported, net, ids(3, 30))


@pytest.mark.parametrize("build, says", [
    (lambda: L.Bidirectional(L.LSTM(3), merge_mode=None), "merge_mode=None"),
    (lambda: L.Bidirectional(L.LSTM(3), backward_layer=L.LSTM(4, go_backwards=True)), "backward_layer differs"),
    (lambda: L.Bidirectional(L.LSTM(3), backward_layer=L.GRU(3, go_backwards=True)), "not the forward's mirror"),
    (lambda: L.LSTM(3, go_backwards=True), "go_backwards=True"),
    (lambda: L.LSTM(3, activation="relu"), "activation='relu'"),
    (lambda: L.LSTM(3, recurrent_activation="hard_sigmoid"), "recurrent_activation"),
    (lambda: L.LSTM(3, return_state=True), "return_state"),
])  # fmt: skip
def test_what_the_description_has_no_layer_for_is_refused(build, says):
    inp = keras.Input((T, 4))
    out = build()(inp)
    net = keras.Model(inp, out[0] if isinstance(out, (list, tuple)) else out)
    with pytest.raises(UnsupportedLayer, match=says.replace("(", r"\(").replace(")", r"\)")):
        keras_import.from_model(net, None, "test:refused")


def test_an_embedding_fed_floats_is_refused():
    net = keras.Sequential([keras.Input((T,)), L.Embedding(10, 3)])
    with pytest.raises(UnsupportedLayer, match="integer keras.Input"):
        keras_import.from_model(net, None, "test:float ids")


def test_a_mask_of_the_users_own_is_refused():
    inp = keras.Input((T, 4))
    y = L.LSTM(3)(inp, mask=keras.ops.any(keras.ops.not_equal(inp, 5.0), axis=-1))
    net = keras.Model(inp, y)
    with pytest.raises(UnsupportedLayer, match="is given a mask= that is not computed from one of the chain"):
        keras_import.from_model(net, None, "test:own mask")


def test_lstm_dropouts_are_noted_and_use_bias_false_imports_zero_biases():
    net = randomise(keras.Sequential([keras.Input((T, 4)), L.LSTM(3, dropout=0.2, recurrent_dropout=0.1, use_bias=False)]), 9)
    imported = keras_import.from_model(net, None, "test:dropout")
    la = imported.model.layers[0]
    assert not np.any(la.weights["b_x"]) and not np.any(la.weights["b_h"])
    assert any("dropout" in n for n in imported.notes) and any("use_bias=False" in n for n in imported.notes)
    agree(imported, net, padded(4))


def test_certify_the_pattern_end_to_end(tmp_path, capsys):
    """`nnparity certify seq.keras --no-bench` on the pattern: exit 0, and the training section compares Keras' step
    in its one-bias LSTM parametrization and names the difference from the canonical two-bias step."""
    import json

    from nnparity import cli

    pattern().save(tmp_path / "seq.keras")
    status = cli.main(["certify", str(tmp_path / "seq.keras"), "--no-bench", "-o", str(tmp_path / "cert")])
    cert = json.loads((tmp_path / "cert" / "certificate.json").read_text())
    assert status == 0, cert["failures"]
    assert cert["verdict"] == "pass" and "PASS" in capsys.readouterr().out
    row = cert["training"]["voices"]["keras"]
    assert row["pass"] and any("LSTM single bias" in n for n in row["parametrization"])
    assert any(d.startswith("keras:") and "LSTM single bias" in d for d in cert["training"]["differences"])
