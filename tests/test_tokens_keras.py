"""The Keras port of issue 25's class_token and position_embedding (impls/ports/keras_port/tokens.py): built-in layers
around keras.ops.ones_like, one trainable EinsumDense kernel each.

- forward and every gradient against the float64 NumPy reference, float32 and float64; one Adam step against the
  reference's step in Keras' convention (the token and the embedding move as the source's do);
- the port's trainable variables are the source's: one per kind, the weight itself ((D,) token, (T, D) embedding),
  nothing else trainable in those layers (no identity kernel, no bias);
- an inf in the input stays where it is (the ones are ones_like's, not x * 0 + 1, which would give NaN);
- the written .keras file loads alone (keras only, safe mode) and computes the reference;
- the Keras importer reads the written port back as the two kinds (keras_import/tokens.py); a token concatenated
  after the sequence, or a ones_like elsewhere, is refused naming it;
- planted bugs, each caught: the token after the sequence, the embedding's positions reversed (in the port), the
  importer reading the kernels reversed.
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
B = 3


def _model():
    """A (B, 5, 4) sequence embedded to width 6 (I != D), the token first, the embedding over its 6 positions, a
    tanh dense on every step, flattened (the squared-error step reads every position, the token's included)."""
    return seeded.chain("tokens_keras", (5, 4), [
        ("dense", "embed", {"units": 6}),
        ("class_token", "cls", {}),
        ("position_embedding", "pos", {}),
        ("dense", "d", {"units": 3, "activation": "tanh"}),
        ("flatten", "f", {}),
    ], seed=5, batch=B)  # fmt: skip


def _data(seed: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1.5, (B, 5, 4))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_forward_and_gradients_match_the_reference(dtype):
    m, x = _model(), _data()
    built = voice_build("keras", m, dtype)
    assert_close(built.forward(x), reference_forward(m, x), dtype, what=f"keras tokens {dtype}")
    y = reference_forward(m, x)
    dy = np.random.default_rng(7).standard_normal(y.shape)
    dx, grads = built.vjp(x, dy)
    rdx, rgrads = reference_vjp(m, x, dy)
    assert set(grads) == set(m.parameters())
    assert_close(dx, rdx, dtype, what="dx")
    for key, g in rgrads.items():
        assert grads[key].shape == g.shape, key
        assert_close(grads[key], g, dtype, what=f"d{key}")


def test_the_ports_trainable_variables_are_the_token_and_the_embedding_only():
    m = _model()
    net = keras_port.keras_model(m, "float32")
    cls, pos = m.layers[1], m.layers[2]
    for kname, want in (("cls_token", cls.weights["token"][0, 0]), ("pos_embedding", pos.weights["embedding"][0])):
        (v,) = net.get_layer(kname).trainable_weights
        np.testing.assert_array_equal(np.asarray(v), want.astype(np.float32))
    for kname in ("cls_token_first", "cls", "pos"):  # the crop and the merges hold nothing
        assert net.get_layer(kname).weights == []
    sizes = sorted(int(np.prod(v.shape)) for v in net.trainable_weights)
    assert sizes == sorted(int(np.size(w)) for w in m.parameters().values())  # the source's, one for one


def test_one_adam_step_matches_the_reference_step():
    m, x = _model(), _data()
    y = reference_forward(m, x)
    t = training.targets(m, y, seed=12)
    assert training.loss_kind(m) == "mse"
    loss, after = keras_port.train_step(m, x, t, "float64")
    ref_loss, ref_after = training.reference_step(m, x, t, "keras")
    assert abs(loss - ref_loss) <= 1e-10 * abs(ref_loss)
    assert set(after) == set(m.parameters())
    for key, w in ref_after.items():
        assert_close(after[key], w, "float64", what=f"{key} after one Adam step")
    for key in (("cls", "token"), ("pos", "embedding")):  # both moved, by the source's step
        assert not np.allclose(after[key], m.parameters()[key], rtol=0, atol=1e-6), key


def test_an_inf_in_the_input_stays_where_it_is():
    m = seeded.chain("tokens_only", (4, 3), [("class_token", "cls", {}), ("position_embedding", "pos", {})], seed=3,
                     batch=B)  # fmt: skip
    x = _data()[:, :4, :3].copy()
    x[1, 2, 0] = np.inf
    got = voice_build("keras", m, "float64").forward(x)
    want = reference_forward(m, x)
    assert np.isinf(got[1, 3, 0]) and np.isinf(want[1, 3, 0])
    assert np.isfinite(np.delete(got.reshape(-1), np.ravel_multi_index((1, 3, 0), got.shape))).all()
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
    fin = np.isfinite(want)
    assert_close(got[fin], want[fin], "float64", what="the finite outputs")


LOAD_ALONE = """
import json, sys
import numpy as np
import keras
y = keras.saving.load_model("port.keras", safe_mode=True)(np.load("x.npy"), training=False)
y = np.asarray(keras.ops.convert_to_numpy(y), np.float64)
want = np.load("want.npy")
print(json.dumps({"err": float(np.max(np.abs(y - want)) / np.max(np.abs(want))),
                  "trainable": [list(v.shape) for v in keras.saving.load_model("port.keras").trainable_weights],
                  "nnparity loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("impls", "nnparity"))}))
"""


def test_the_written_port_loads_alone_and_computes_the_reference(tmp_path):
    m, x = _model(), _data().astype(np.float32)
    keras_port.write(m, tmp_path / "port.keras")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "want.npy", reference_forward(m, x.astype(np.float64)))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}
    r = subprocess.run([sys.executable, "-I", "-c", LOAD_ALONE], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=600, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["nnparity loaded"] == []
    assert got["err"] <= 2e-6, got
    assert sorted(got["trainable"]) == sorted([[4, 6], [6], [6], [6, 6], [6, 3], [3]])  # embed, cls, pos, d: no more


# --------------------------------------------------------------------------- planted bugs


def _planted(monkeypatch, kind, **meta):
    entries = keras_port.EMITTERS._entries
    entry = entries[kind]
    planted = dataclasses.replace(entry, meta={**entry.meta, **meta})
    monkeypatch.setattr(keras_port.EMITTERS, "_entries", {**entries, kind: planted})


def _error(m, x) -> float:
    return error_stats(voice_build("keras", m, "float64").forward(x), reference_forward(m, x)).rel


def test_a_planted_token_after_the_sequence_is_caught(monkeypatch):
    m, x = _model(), _data()
    assert _error(m, x) <= 1e-12

    def after(pieces, opts, x):
        first, held, join = pieces
        return join([x, held(keras.ops.ones_like(first(x)))])

    _planted(monkeypatch, "class_token", wire=after)
    assert _error(m, x) > 1e-3


def test_a_planted_embedding_with_its_positions_reversed_is_caught(monkeypatch):
    m, x = _model(), _data()
    assert _error(m, x) <= 1e-12
    real = keras_port.EMITTERS.get("position_embedding").meta["weights"]

    @dataclasses.dataclass(frozen=True)
    class Reversed(type(real)):
        def to_keras(self, layer, opts):
            return [a[::-1] for a in super().to_keras(layer, opts)]

    _planted(monkeypatch, "position_embedding", weights=Reversed(real.names, real.name))
    assert _error(m, x) > 1e-3


# --------------------------------------------------------------------------- the Keras importer reads the port back


def test_the_written_port_imports_back_as_the_two_kinds(tmp_path):
    from impls.importers import keras_import

    m, x = _model(), _data()
    keras_port.write(m, tmp_path / "port.keras")
    imported = keras_import.load_file(tmp_path / "port.keras", (B, 5, 4))
    back = imported.model
    assert [(la.kind, la.name, la.inputs) for la in back.layers] == [(la.kind, la.name, ()) for la in m.layers]
    for la, want in zip(back.layers, m.layers, strict=True):
        assert set(la.weights) == set(want.weights), la.name
        for k, w in want.weights.items():
            np.testing.assert_array_equal(la.weights[k], np.asarray(w, np.float32), err_msg=f"{la.name} {k}")
    x32 = x.astype(np.float32)
    want = reference_outputs(back.astype("float64"), x32.astype(np.float64))
    for i, (got, r) in enumerate(zip(imported.layer_outputs(x32), want, strict=True)):
        assert error_stats(got, r).rel <= 1e-6, back.layers[i].label(i)
    ins = [x32.astype(np.float64), *want[:-1]]
    for i in (1, 2):  # the token and the embedding alone, fed the reference's input to them
        got = imported.layer_call(i, ins[i].astype(np.float32))
        assert error_stats(got, want[i]).rel <= 1e-6, back.layers[i].label(i)


def _keras_graph(after: bool = False, ones_elsewhere: bool = False):
    L = keras.layers
    x = keras.Input((5, 4))
    y = L.Dense(6, name="embed")(x)
    first = L.Cropping1D((0, 4), name="first")(y)
    token = L.EinsumDense("abc,c->abc", output_shape=(1, 6), bias_axes=None, name="token")(keras.ops.ones_like(first))
    y = L.Concatenate(axis=1, name="cls")([y, token] if after else [token, y])
    if ones_elsewhere:
        y = L.Add(name="plus_one")([y, keras.ops.ones_like(y)])
    return keras.Model(x, L.Dense(3, name="head")(y))


def test_a_keras_token_graph_imports_and_one_put_after_the_sequence_is_refused():
    from impls.importers import UnsupportedLayer, keras_import

    got = keras_import.from_model(_keras_graph(), (B, 5, 4), "net")
    assert [la.kind for la in got.model.layers] == ["dense", "class_token", "dense"]
    for graph in (_keras_graph(after=True), _keras_graph(ones_elsewhere=True)):
        with pytest.raises(UnsupportedLayer, match="ones_like is read only as the Keras port writes"):
            keras_import.from_model(graph, (B, 5, 4), "net")


def test_a_planted_importer_reading_the_embedding_reversed_is_caught(tmp_path, monkeypatch):
    from impls.importers import keras_import
    from impls.importers.keras_import import tokens

    m, x = _model(), _data().astype(np.float32)
    keras_port.write(m, tmp_path / "port.keras")

    def pos_error() -> float:
        imported = keras_import.load_file(tmp_path / "port.keras", (B, 5, 4))
        want = reference_outputs(imported.model.astype("float64"), x.astype(np.float64))
        return error_stats(imported.layer_outputs(x)[2], want[2]).rel

    assert pos_error() <= 1e-6
    real = tokens._kernel
    monkeypatch.setattr(tokens, "_kernel", lambda e: real(e)[::-1])
    assert pos_error() > 1e-3
