"""The Keras port of recurrent layers started from given states (initial_state "weights", issue 25 item 4:
keras_port/recurrent.py state_layers) and the Keras importer reading that pattern back (keras_import/states.py).

- forward and every gradient (h0, c0, h0_rev, c0_rev included) against the float64 NumPy reference, float32 and
  float64: GRU (reset_after, reset_before), LSTM, Bidirectional of each, under a padding mask too;
- one Adam step against the reference's step in Keras' convention (the states move as the source's do);
- the port's trainable variables are the source's: each state one (H,) EinsumDense kernel, nothing else added;
- the written .keras files load alone (keras only, python -I, safe mode) and compute the reference;
- the Keras importer reads the written port back as initial_state "weights" with the same states (masked too); a
  state from a second model Input is refused naming the layer;
- planted bugs, each caught: a bidirectional's forward and backward states swapped, an LSTM's h0 and c0 swapped (in
  the port's Keras initial_state= order), the states dropped, the importer reading h0 and c0 swapped.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from impls.contract.tolerance import assert_close, error_stats
from impls.model import seeded, training
from impls.model.compose import reference_forward, reference_outputs, reference_vjp
from impls.model.voices import build as voice_build

keras_port = pytest.importorskip("impls.ports.keras_port")
keras = keras_port.keras
B, T, I, H = 3, 5, 4, 6
IS = {"initial_state": "weights"}
IDS = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 1, 2], [3, 0, 0, 0, 0]])  # rows of 3, 5 and 1 valid steps


def chain(name: str, specs: list, shape: tuple = (T, I)) -> object:
    return seeded.chain(name, shape, specs, 3, batch=B)


MODELS = {
    "gru-seq": lambda: chain("gru-seq", [("gru", "g", {"units": H, "return_sequences": True, **IS})]),
    "gru-bi-final": lambda: chain("gru-bi-final", [("gru", "g", {"units": H, "direction": "bidirectional", **IS}),
                                                   ("dense", "out", {"units": 2})]),
    "gru-rb-bi-seq": lambda: chain("gru-rb-bi-seq", [("gru", "g", {"units": H, "variant": "reset_before", "merge_mode": "sum",
                                                                   "direction": "bidirectional", "return_sequences": True, **IS})]),
    "lstm-final": lambda: chain("lstm-final", [("lstm", "l", {"units": H, **IS}), ("dense", "out", {"units": 2})]),
    "lstm-bi-seq": lambda: chain("lstm-bi-seq", [("lstm", "l", {"units": H, "direction": "bidirectional",
                                                                "return_sequences": True, **IS})]),
    "lstm-bi-masked": lambda: chain("lstm-bi-masked", [("embedding", "e", {"input_dim": 9, "output_dim": I, "mask_zero": True}),
                                                       ("lstm", "l", {"units": H, "direction": "bidirectional", **IS})], (T,)),
    "gru-masked-seq": lambda: chain("gru-masked-seq", [("embedding", "e", {"input_dim": 9, "output_dim": I, "mask_zero": True}),
                                                       ("gru", "g", {"units": H, "return_sequences": True, **IS})], (T,)),
}  # fmt: skip


def data(name: str, seed: int = 1) -> np.ndarray:
    return IDS if "masked" in name else np.random.default_rng(seed).uniform(-1.0, 1.0, (B, T, I))


def _rnn(m) -> object:
    return next(la for la in m.layers if la.kind in ("gru", "lstm"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_forward_and_gradients_match_the_reference(dtype):
    for name, make in MODELS.items():
        m, x = make(), data(name)
        built = voice_build("keras", m, dtype)
        y = reference_forward(m, x)
        assert_close(built.forward(x), y, dtype, what=f"{name} {dtype}")
        dy = np.random.default_rng(7).standard_normal(y.shape)
        dx, grads = built.vjp(x, dy)
        rdx, rgrads = reference_vjp(m, x, dy)
        assert set(grads) == set(m.parameters())
        if "masked" not in name:
            assert_close(dx, rdx, dtype, what=f"{name} dx")
        states = [k for k in rgrads if k[1][:2] in ("h0", "c0")]
        assert len(states) == {"gru": 1, "lstm": 2}[_rnn(m).kind] * (2 if "bi" in name else 1), name
        for key, g in rgrads.items():
            assert grads[key].shape == g.shape, key
            assert_close(grads[key], g, dtype, what=f"{name} d{key} {dtype}")
        for key in states:
            assert np.abs(rgrads[key]).max() > 1e-3, key  # the states' gradients are not vacuous


def _one_bias(m):
    """An LSTM as Keras holds it: b_x + b_h in b_x, b_h = 0 (its one bias per direction)."""
    i, la = next((i, la) for i, la in enumerate(m.layers) if la.kind == "lstm")
    w = dict(la.weights)
    for s in ("", "_rev"):
        if "b_h" + s in w:
            w["b_x" + s], w["b_h" + s] = w["b_x" + s] + w["b_h" + s], np.zeros_like(w["b_h" + s])
    return m.replace_layer(i, dataclasses.replace(la, weights=w))


@pytest.mark.parametrize("name", ["gru-seq", "gru-bi-final", "lstm-bi-seq"])
def test_one_adam_step_matches_the_reference_step(name):
    m = MODELS[name]()
    x = data(name)
    t = training.targets(m, reference_forward(m, x), seed=12)
    loss, after = keras_port.train_step(m, x, t, "float64")
    lstm = _rnn(m).kind == "lstm"
    ref_loss, ref_after = training.reference_step(_one_bias(m) if lstm else m, x, t, "keras")
    assert abs(loss - ref_loss) <= 1e-10 * abs(ref_loss)
    assert set(after) == set(m.parameters())
    for key, w in ref_after.items():
        if lstm and key[1].startswith("b_h"):  # Keras' one LSTM bias: a declared difference (train_notes)
            assert np.all(after[key] == 0)
            continue
        assert_close(after[key], w, "float64", what=f"{name} {key} after one Adam step")
    for key in [k for k in m.parameters() if k[1][:2] in ("h0", "c0")]:  # the states moved, by the source's step
        assert not np.allclose(after[key], m.parameters()[key], rtol=0, atol=1e-6), key


def test_the_ports_trainable_variables_are_the_sources():
    for name in ("gru-bi-final", "lstm-bi-seq"):
        m = MODELS[name]()
        la = _rnn(m)
        net = keras_port.keras_model(m, "float32")
        for k in [k for k in la.weights if k[:2] in ("h0", "c0")]:
            (v,) = net.get_layer(f"{la.name}_state_{k}").trainable_weights
            np.testing.assert_array_equal(np.asarray(v), np.asarray(la.weights[k], np.float32))
        for helper in ("flat", "one"):
            assert net.get_layer(f"{la.name}_state_{helper}").weights == []
        size = sum(int(np.prod(v.shape)) for v in net.trainable_weights)
        want = sum(int(np.size(w)) for w in m.parameters().values())
        if la.kind == "lstm":  # Keras' one bias per direction where the description holds b_x and b_h
            want -= 2 * 4 * H
        assert size == want, name
        assert len(net.trainable_weights) == 3 * 2 + len([k for k in la.weights if k[:2] in ("h0", "c0")]) + (name == "gru-bi-final") * 2


LOAD_ALONE = """
import json, sys
import numpy as np
import keras
out = {}
for name in json.loads(sys.argv[1]):
    y = keras.saving.load_model(name + ".keras", safe_mode=True)(np.load(name + ".x.npy"), training=False)
    y = np.asarray(keras.ops.convert_to_numpy(y), np.float64)
    want = np.load(name + ".want.npy")
    out[name] = float(np.max(np.abs(y - want)) / np.max(np.abs(want)))
out["nnparity loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in ("impls", "nnparity"))
print(json.dumps(out))
"""


def test_the_written_ports_load_alone_and_compute_the_reference(tmp_path):
    for name, make in MODELS.items():
        m, x = make(), data(name)
        x = x if "masked" in name else x.astype(np.float32)
        keras_port.write(m, tmp_path / f"{name}.keras")
        np.save(tmp_path / f"{name}.x.npy", x)
        np.save(tmp_path / f"{name}.want.npy", reference_forward(m, np.asarray(x, np.float64) if "masked" not in name else x))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}
    r = subprocess.run([sys.executable, "-I", "-c", LOAD_ALONE, json.dumps(list(MODELS))], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got.pop("nnparity loaded") == []
    for name, err in got.items():
        assert err <= 2e-5, (name, err)


# --------------------------------------------------------------------------- the Keras importer reads the port back


@pytest.mark.parametrize("name", ["gru-bi-final", "lstm-bi-seq", "lstm-bi-masked"])
def test_the_written_port_imports_back_with_the_same_states(tmp_path, name):
    from impls.importers import keras_import

    m = MODELS[name]()
    keras_port.write(m, tmp_path / "port.keras")
    shape = (B, T) if "masked" in name else (B, T, I)
    imported = keras_import.load_file(tmp_path / "port.keras", shape)
    back = imported.model
    assert [(la.kind, la.name) for la in back.layers] == [(la.kind, la.name) for la in m.layers]
    la, want = _rnn(back), _rnn(m)
    assert la.options["initial_state"] == "weights"
    for k in [k for k in want.weights if k[:2] in ("h0", "c0")]:
        np.testing.assert_array_equal(la.weights[k], np.asarray(want.weights[k], np.float32), err_msg=k)
    x = data(name)
    x = x if "masked" in name else x.astype(np.float32)
    ref = reference_outputs(back.astype("float64"), x if "masked" in name else x.astype(np.float64))
    for i, (got, r) in enumerate(zip(imported.layer_outputs(x), ref, strict=True)):
        assert error_stats(got, r).rel <= 2e-6, back.layers[i].label(i)
    assert error_stats(imported.forward(x), ref[-1]).rel <= 2e-6
    if "masked" not in name:  # the recurrent layer alone, from its states
        assert error_stats(imported.layer_call(0, x), ref[0]).rel <= 2e-6


def test_a_state_from_a_second_model_input_is_refused_naming_the_layer():
    from impls.importers import UnsupportedLayer, keras_import

    x, s = keras.Input((T, I)), keras.Input((H,), name="state")
    net = keras.Model([x, s], keras.layers.GRU(H, name="gru")(x, initial_state=[keras.layers.Dense(H)(s)]))
    with pytest.raises(UnsupportedLayer, match="'gru' \\(GRU\\) starts from initial_state= computed from the model's "
                                               "second input 'state': a description has one input"):  # fmt: skip
        keras_import.from_model(net, None, "net")


# --------------------------------------------------------------------------- planted bugs


def _planted_order(monkeypatch, bug: str) -> None:
    """The port hands Keras its states in the wrong initial_state= order."""
    from impls.ports.keras_port import recurrent

    real = recurrent._state_names

    def planted(kind, opts):
        names = real(kind, opts)
        if bug == "directions swapped":
            half = len(names) // 2
            return names[half:] + names[:half]
        return [n.replace("h0", "@").replace("c0", "h0").replace("@", "c0") for n in names]

    monkeypatch.setattr(recurrent, "_state_names", planted)


def _error(name: str) -> float:
    m, x = MODELS[name](), data(name)
    return error_stats(voice_build("keras", m, "float64").forward(x), reference_forward(m, x)).rel


@pytest.mark.parametrize("bug,names", [("directions swapped", ["gru-bi-final", "lstm-bi-seq"]),
                                       ("h0 and c0 swapped", ["lstm-final", "lstm-bi-masked"])])  # fmt: skip
def test_a_planted_state_order_is_caught(monkeypatch, bug, names):
    for name in names:
        assert _error(name) <= 1e-12
    _planted_order(monkeypatch, bug)
    for name in names:
        assert _error(name) > 1e-3, (bug, name)


def test_planted_states_dropped_are_caught(monkeypatch):
    assert _error("gru-seq") <= 1e-12
    entries = keras_port.EMITTERS._entries
    entry = entries["gru"]

    def dropped(pieces, opts, x):  # the states made (their kernels hold h0) but not handed to the GRU
        *states, rnn = pieces
        flat, one, *held = states
        ones = one(flat(keras.ops.ones_like(x)))
        [h(ones) for h in held]
        return rnn(x)

    monkeypatch.setattr(keras_port.EMITTERS, "_entries", {**entries, "gru": dataclasses.replace(entry, meta={**entry.meta, "wire": dropped})})
    assert _error("gru-seq") > 1e-3


def test_a_planted_importer_reading_h0_and_c0_swapped_is_caught(tmp_path, monkeypatch):
    from impls.importers import keras_import
    from impls.importers.keras_import import states

    m, x = MODELS["lstm-final"](), data("lstm-final").astype(np.float32)
    keras_port.write(m, tmp_path / "port.keras")

    def error() -> float:
        imported = keras_import.load_file(tmp_path / "port.keras", (B, T, I))
        return error_stats(imported.forward(x), reference_forward(imported.model.astype("float64"), x.astype(np.float64))).rel

    assert error() <= 2e-6
    monkeypatch.setattr(states, "STATE_WEIGHTS", {**states.STATE_WEIGHTS, "lstm": ("c0", "h0")})
    assert error() > 1e-3


@pytest.mark.parametrize("which", [0, 1])
def test_a_torch_module_from_its_states_ports_to_keras(which):
    """tests/test_initial_state.py's torch modules (a bidirectional GRU from a trainable h0, a two-layer LSTM from
    buffers h0, c0), imported, then ported to Keras: the port computes the module's output."""
    import torch

    from impls.importers.torch_import import from_module
    from tests.test_initial_state import B as TB
    from tests.test_initial_state import I as TI
    from tests.test_initial_state import T as TT
    from tests.test_initial_state import _torch_modules

    torch.manual_seed(7)
    net = _torch_modules()[which]().eval()
    imported = from_module(net, (TB, TT, TI), "m.py:net")
    assert any(la.options.get("initial_state") == "weights" for la in imported.model.layers)
    x = np.random.default_rng(9).uniform(-1.0, 1.0, (TB, TT, TI))
    with torch.no_grad():
        want = net(torch.from_numpy(x).float()).double().numpy()
    got = voice_build("keras", imported.model, "float32").forward(x.astype(np.float32))
    assert_close(got, want, "float32", what=type(net).__name__)
    assert error_stats(got, want).rel < 2e-5
