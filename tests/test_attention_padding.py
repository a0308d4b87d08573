"""Issue 25's two attention models on a padded batch: compared only at the positions the source defines.

- torch: the issue's classifier given `src_key_padding_mask=ids == 0` and averaged over each row's valid steps
  ((h * keep).sum(1) / keep.sum(1)), in both norm placements; an nn.MultiheadAttention given `key_padding_mask=`
  and a masked_fill mean. The mask nodes are no layer: the embedding gets mask_zero (torch's True = ignore is the
  description's True = attend, inverted), every attention masks its keys, the mean is a masked global_avg_pool.
  torch's eval fast path (nested tensors) writes exact zeros at the padded steps where the description attends the
  valid keys: the layer-by-layer comparison reads only the valid steps, and the test shows it has to.
- Keras: keras.io's "Text classification with Transformer" block with Embedding(mask_zero=True): Keras' mask reaches
  MultiHeadAttention (keys and query rows), LayerNormalization and GlobalAveragePooling1D, which averages the valid
  steps only (masked=True).
- Each ports to torch, Keras, ONNX and Flax, loads alone and agrees within 2e-5 on the padded batch; `nnparity
  certify` exits 0 and its certificate says which layers were compared at the valid steps only.
- Planted bugs, each caught: the mask's polarity inverted in the reference (ids == 0 read as valid), in the torch
  port's key_padding_mask (through certify: it fails), in the Flax port's masked mean, in the ONNX port's Less, in
  the Keras port's value_mask; torch given ids != 0 (the polarity the other way) or a float 0/1 mask (torch adds it)
  is refused, naming the node; Keras given value_mask=ids == 0 too.
- Refused with the reason: a plain mean over the padded steps after a padded attention (torch leaves them
  undefined), a row with no valid step (torch gives NaN there, Keras uniform weights), a mask as a second input,
  an explicit Keras attention_mask, keras.io's block as written (its raw x + a and its nested Sequential drop Keras'
  mask) and a second Keras attention under the mask without value_mask= (Keras deletes its inputs' masks at run
  time: measured). The Keras port passes value_mask= explicitly: its two padded blocks import back and agree.

Inputs: seeded ids, batch 4, lengths 7, 5, 3, 1 (one row full, the others padded, none fully padded).
"""

from __future__ import annotations

import dataclasses
import json
import textwrap

import numpy as np
import pytest

from impls.contract.tolerance import error_stats, tolerance
from impls.importers import UnsupportedLayer, load
from impls.model.compose import reference_forward, reference_outputs
from nnparity import cli
from tests.test_attention import AGREE, ports_alone
from verify.conftest import load_framework

BAR = tolerance("float32")
LENGTHS = (7, 5, 3, 1)

TORCH_NET = """
import torch
from torch import nn

torch.manual_seed(0)


class Padded(nn.Module):
    # the issue's classifier on a padded batch: the encoder told which steps are padding, the mean over the valid ones
    def __init__(self, vocab=50, width=32, classes=4, norm_first=False):
        super().__init__()
        self.embedding = nn.Embedding(vocab, width)
        layer = nn.TransformerEncoderLayer(width, 4, 64, batch_first=True, norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(layer, 2)
        self.fc = nn.Linear(width, classes)

    def forward(self, ids):
        pad = ids == 0  # True at padding: torch's "ignore"
        h = self.encoder(self.embedding(ids), src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).float()
        return self.fc((h * keep).sum(1) / keep.sum(1))


class Filled(nn.Module):
    # nn.MultiheadAttention given key_padding_mask, a residual and LayerNorm, a masked_fill mean
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(50, 12)
        self.proj = nn.Linear(12, 16)
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.norm = nn.LayerNorm(16)
        self.fc = nn.Linear(16, 3)

    def forward(self, ids):
        pad = ids.eq(0)
        x = torch.tanh(self.proj(self.embedding(ids)))
        a = self.attn(x, x, x, key_padding_mask=pad, need_weights=False)[0]
        h = self.norm(x + a)
        count = (~pad).sum(dim=1, keepdim=True)
        return self.fc(h.masked_fill(pad.unsqueeze(-1), 0.0).sum(1) / count)


class PlainMean(Padded):
    # the mean over every step, padded ones included: torch leaves those undefined (zeros on its fast path)
    def forward(self, ids):
        return self.fc(self.encoder(self.embedding(ids), src_key_padding_mask=ids == 0).mean(dim=1))


class Inverted(Padded):
    # True at the valid steps: torch's key_padding_mask means ignore, so torch would attend the padding only
    def forward(self, ids):
        keep = ids != 0
        h = self.encoder(self.embedding(ids), src_key_padding_mask=keep)
        k = keep.unsqueeze(-1).float()
        return self.fc((h * k).sum(1) / k.sum(1))


class Added(Filled):
    # a float 0/1 mask: torch adds it to the scores
    def forward(self, ids):
        pad = ids == 0
        x = torch.tanh(self.proj(self.embedding(ids)))
        h = self.attn(x, x, x, key_padding_mask=pad.float())[0]
        count = (~pad).sum(dim=1, keepdim=True)
        return self.fc(h.masked_fill(pad.unsqueeze(-1), 0.0).sum(1) / count)


model = Padded().eval()
pre_norm = Padded(norm_first=True).eval()
filled = Filled().eval()
plain_mean = PlainMean().eval()
inverted = Inverted().eval()
added = Added().eval()
"""

KERAS_NET = """
import keras
from keras import layers as L

keras.utils.set_random_seed(0)
vocab, maxlen, width, heads, ff = 50, 7, 32, 2, 32

# keras.io's "Text classification with Transformer" block, its embedding masking id 0
ids = keras.Input((maxlen,), dtype="int32")
x = L.Embedding(vocab, width, mask_zero=True, name="embedding")(ids)
a = L.MultiHeadAttention(num_heads=heads, key_dim=width, name="attention")(x, x)
a = L.Dropout(0.1)(a)
out1 = L.LayerNormalization(epsilon=1e-6, name="norm1")(L.Add()([x, a]))
ffn = L.Dense(width, name="ffn_2")(L.Dense(ff, activation="relu", name="ffn_1")(out1))  # a nested Sequential drops the mask
ffn = L.Dropout(0.1)(ffn)
y = L.LayerNormalization(epsilon=1e-6, name="norm2")(L.Add()([out1, ffn]))
y = L.GlobalAveragePooling1D(name="pool")(y)
y = L.Dropout(0.1)(y)
y = L.Dense(20, activation="relu")(y)
model = keras.Model(ids, L.Dense(2, activation="softmax", name="out")(y))

# keras.io's block as written: its raw `x + a` and its Sequential FFN each drop Keras' mask, so the pool averages the
# padded steps
r = L.LayerNormalization(epsilon=1e-6)(x + L.MultiHeadAttention(2, 8)(x, x))
raw = keras.Model(ids, L.Dense(2)(L.GlobalAveragePooling1D(name="raw_pool")(r)))
s = L.Add()([x, L.MultiHeadAttention(2, 8)(x, x)])
s = L.Add()([s, keras.Sequential([L.Dense(ff, activation="relu"), L.Dense(width)])(s)])
nested = keras.Model(ids, L.Dense(2)(L.GlobalAveragePooling1D(name="nested_pool")(s)))

# two blocks: Keras' first attention deletes its inputs' masks at run time, so its second runs without one
t = x
for _ in range(2):
    t = L.LayerNormalization()(L.Add()([t, L.MultiHeadAttention(2, 8)(t, t)]))
two = keras.Model(ids, L.Dense(2)(L.GlobalAveragePooling1D()(t)))

# an explicit value_mask True at the padding: Keras would attend the padding only
f = L.MultiHeadAttention(2, 8, name="flipped_attention")(x, x, value_mask=keras.ops.equal(ids, 0))
flipped = keras.Model(ids, L.Dense(2)(L.GlobalAveragePooling1D()(L.Add()([x, f]))))

# an explicit attention_mask (B, T, T) from the ids
e = L.MultiHeadAttention(2, 8, name="explicit_attention")(
    x, x, attention_mask=keras.ops.logical_and(keras.ops.not_equal(ids, 0)[:, :, None], keras.ops.not_equal(ids, 0)[:, None, :]))
explicit = keras.Model(ids, L.Dense(2)(L.GlobalAveragePooling1D()(L.Add()([x, e]))))

# no attention: the mask reaches GlobalAveragePooling1D through a Dense
d = L.Dense(6, activation="tanh")(L.Embedding(20, 5, mask_zero=True)(ids))
pooled = keras.Model(ids, L.Dense(2)(L.GlobalAveragePooling1D()(d)))
"""


def padded_ids(seed: int, vocab: int = 50, lengths=LENGTHS, steps: int = 7) -> np.ndarray:
    ids = np.random.default_rng(seed).integers(1, vocab, (len(lengths), steps))
    for b, n in enumerate(lengths):
        ids[b, n:] = 0
    return ids


def _valid(ids: np.ndarray) -> np.ndarray:
    return ids != 0


@pytest.fixture(scope="module")
def torch_dir(tmp_path_factory):
    load_framework("torch")
    d = tmp_path_factory.mktemp("padding")
    (d / "torch_net.py").write_text(textwrap.dedent(TORCH_NET))
    return d


@pytest.fixture(scope="module")
def keras_dir(tmp_path_factory):
    load_framework("keras")
    d = tmp_path_factory.mktemp("padding_keras")
    (d / "keras_net.py").write_text(textwrap.dedent(KERAS_NET))
    return d


def _torch_want(d, name: str, x: np.ndarray) -> np.ndarray:
    import runpy

    torch = load_framework("torch")
    with torch.no_grad():
        return runpy.run_path(str(d / "torch_net.py"))[name](torch.from_numpy(x)).numpy()


def _keras_want(d, name: str, x: np.ndarray) -> np.ndarray:
    import runpy

    return np.asarray(runpy.run_path(str(d / "keras_net.py"))[name](x, training=False))


def _layer_by_layer(imported, x) -> dict[str, float]:
    """Every layer's source output against the reference: at the valid steps where Model.undefined_steps says the
    padded ones are undefined, else whole."""
    m = imported.model.astype("float64")
    undefined, valid = m.undefined_steps(), _valid(x)
    errs = {}
    for i, (got, r) in enumerate(zip(imported.layer_outputs(x), reference_outputs(m, x), strict=True)):
        errs[m.layers[i].name] = error_stats(got[valid], r[valid]).rel if undefined[i] is not None else error_stats(got, r).rel
    return errs


# --------------------------------------------------------------------------- torch


@pytest.mark.parametrize("name", ["model", "pre_norm", "filled"])
def test_torch_padded_models_import_with_the_mask_and_agree_at_the_valid_steps(torch_dir, name):
    x = padded_ids(1)
    imported = load(f"{torch_dir / 'torch_net.py'}:{name}", x.shape)
    m = imported.model
    sources, undefined = m.mask_sources(), m.undefined_steps()
    assert m.layers[0].kind == "embedding" and m.layers[0].options["mask_zero"] is True
    attn = [i for i, la in enumerate(m.layers) if la.kind == "multi_head_attention"]
    assert len(attn) == (1 if name == "filled" else 2) and all(sources[i] == 0 for i in attn)
    pool = next(i for i, la in enumerate(m.layers) if la.kind == "global_avg_pool")
    assert m.layers[pool].options["masked"] is True and sources[pool] == 0
    assert undefined[attn[0]] == 0 and undefined[pool] is None and undefined[-1] is None
    want = _torch_want(torch_dir, name, x)
    assert error_stats(reference_forward(m.astype("float64"), x), want).rel <= BAR
    errs = _layer_by_layer(imported, x)
    assert max(errs.values()) <= BAR, errs


def test_torch_fast_path_zeros_at_padded_steps_are_why_only_valid_steps_are_compared(torch_dir):
    """Measured: torch's eval fast path (nested tensors) gives exact zeros at the padded steps of the encoder's
    output; the description (torch's slow path) attends the valid keys there. Compared whole, the layer fails."""
    x = padded_ids(1)
    imported = load(f"{torch_dir / 'torch_net.py'}:model", x.shape)
    m = imported.model.astype("float64")
    last = max(i for i, la in enumerate(m.layers) if la.name.startswith("encoder."))
    got = imported.layer_outputs(x)[last]  # the encoder's own output, recorded from the module's forward
    ref = reference_outputs(m, x)[last]
    pad = ~_valid(x)
    assert np.all(got[pad] == 0.0) and np.min(np.abs(ref[pad]).max(axis=-1)) > 0.1
    assert error_stats(got, ref).rel > 0.1  # whole: over the bar
    assert error_stats(got[~pad], ref[~pad]).rel <= BAR  # at the valid steps: agrees


@pytest.mark.parametrize("name, why", [
    ("plain_mean", "reads every step of a padded sequence after an attention"),
    ("inverted", "True at the valid steps, but torch's key_padding_mask means ignore"),
    ("added", "float 0/1 mask, which torch adds to the scores"),
])  # fmt: skip
def test_torch_masks_it_cannot_define_are_refused_naming_the_node(torch_dir, name, why):
    with pytest.raises(UnsupportedLayer, match=why):
        load(f"{torch_dir / 'torch_net.py'}:{name}", (4, 7))


def test_a_row_with_no_valid_step_is_refused(torch_dir):
    from impls.model.description import ModelError

    imported = load(f"{torch_dir / 'torch_net.py'}:model", (4, 7))
    x = padded_ids(2, lengths=(7, 5, 0, 2))
    with pytest.raises(ModelError, match="row 2 of the ids is padding only"):
        reference_forward(imported.model, x)


def test_a_planted_polarity_inversion_in_the_reference_is_caught(torch_dir, monkeypatch):
    """The description's mask read the other way (ids == 0 as the valid steps): torch's own output leaves it."""
    from impls.primitives import numpy_impl, numpy_seq

    x = padded_ids(3)
    imported = load(f"{torch_dir / 'torch_net.py'}:filled", x.shape)
    want = _torch_want(torch_dir, "filled", x)
    m = imported.model.astype("float64")
    assert error_stats(reference_forward(m, x), want).rel <= BAR
    monkeypatch.setattr(numpy_impl, "ids_mask", lambda ids: np.asarray(ids) == 0)
    monkeypatch.setattr(numpy_seq, "ids_mask", lambda ids: np.asarray(ids) == 0)
    with np.errstate(all="ignore"):
        got = reference_forward(m, x)
    assert not np.all(np.isfinite(got)) or error_stats(got, want).rel > 1e-3


def test_the_padded_torch_classifier_ports_loads_alone_and_agrees(torch_dir, capsys):
    x = padded_ids(5)
    want = _torch_want(torch_dir, "model", x)
    got = ports_alone(torch_dir, f"{torch_dir / 'torch_net.py'}:model", x, want, capsys, "4,7")
    assert all(err <= AGREE for err in got.values()), got
    code = (torch_dir / "port_torch" / "model.py").read_text()
    assert "key_padding_mask=ignore" in code and "the mean over each row's valid steps" in code


def test_the_padded_torch_classifier_certifies_and_says_which_steps(torch_dir, tmp_path):
    out = tmp_path / "cert"
    rc = cli.main(["certify", f"{torch_dir / 'torch_net.py'}:model", "--input-shape", "4,7", "--no-bench", "-o", str(out)])
    md = (out / "certificate.md").read_text()
    assert rc == 0, md[:3000]
    cert = json.loads((out / "certificate.json").read_text())
    steps = cert["inputs"]["compared_steps"]
    assert steps["mask_source"]["name"] == "embedding" and steps["lengths"] == [7, 4, 2, 1]
    assert "encoder.layers.0.self_attn" in steps["names"] and "fc" not in steps["names"]
    assert "padded steps: layers" in md and "valid steps only" in md
    rows = cert["source"]["layers"]
    attn = next(r for r in rows if r["name"] == "encoder.layers.1.norm2")
    assert attn["accumulated"]["steps"] == "valid" and attn["accumulated"]["pass"]


def test_a_planted_polarity_inversion_in_the_torch_port_fails_certify(torch_dir, tmp_path, monkeypatch):
    """torch's key_padding_mask written True at the valid steps: the torch_nn voice's certificate fails."""
    from impls.ports.torch_port import EMITTERS

    entry = EMITTERS.get("multi_head_attention")
    real = entry.fn

    def inverted(*a, **k):
        p = real(*a, **k)
        p.lines[:] = [ln.replace(">= lengths", "< lengths") for ln in p.lines]
        return p

    monkeypatch.setattr(EMITTERS, "_entries", {**EMITTERS._entries,
                                               "multi_head_attention": dataclasses.replace(entry, fn=inverted)})
    out = tmp_path / "cert"
    rc = cli.main(["certify", f"{torch_dir / 'torch_net.py'}:filled", "--input-shape", "4,7", "--no-bench",
                   "--jobs", "1", "-o", str(out)])  # fmt: skip
    cert = json.loads((out / "certificate.json").read_text())
    assert rc != 0 and cert["verdict"] == "fail"
    assert any("torch_nn" in str(f) for f in cert["failures"]), cert["failures"]


def test_a_planted_polarity_inversion_in_the_flax_port_is_caught(torch_dir, monkeypatch):
    from impls import unavailable_reason
    from impls.model import voices
    from impls.ports.flax_port import pooling

    if unavailable_reason("flax"):
        pytest.skip(unavailable_reason("flax"))
    x = padded_ids(6)
    m = load(f"{torch_dir / 'torch_net.py'}:filled", x.shape).model
    want = reference_forward(m.astype("float64"), x)
    assert error_stats(voices.build("flax", m, "float32").forward(x), want).rel <= AGREE
    real = pooling.global_avg_pool

    def inverted(*a, **k):
        return [ln.replace("< lengths", ">= lengths") for ln in real(*a, **k)]

    from impls.ports.flax_port.emit import EMITTERS

    entry = EMITTERS.get("global_avg_pool")
    monkeypatch.setattr(EMITTERS, "_entries", {**EMITTERS._entries,
                                               "global_avg_pool": dataclasses.replace(entry, fn=inverted)})
    got = voices.build("flax", m, "float32").forward(x)
    assert not np.all(np.isfinite(got)) or error_stats(got, want).rel > 1e-3


# --------------------------------------------------------------------------- Keras


def test_keras_mask_zero_reaches_attention_and_the_pool_and_agrees_at_the_valid_steps(keras_dir):
    x = padded_ids(7).astype(np.int32)
    imported = load(f"{keras_dir / 'keras_net.py'}:model", x.shape)
    m = imported.model
    sources, undefined = m.mask_sources(), m.undefined_steps()
    attn = next(i for i, la in enumerate(m.layers) if la.kind == "multi_head_attention")
    pool = next(i for i, la in enumerate(m.layers) if la.kind == "global_avg_pool")
    assert m.layers[0].options["mask_zero"] and sources[attn] == 0 and sources[pool] == 0
    assert m.layers[pool].options["masked"] is True and undefined[attn] == 0 and undefined[pool] is None
    want = _keras_want(keras_dir, "model", x)
    assert error_stats(reference_forward(m.astype("float64"), x), want).rel <= BAR
    errs = _layer_by_layer(imported, x)
    assert max(errs.values()) <= BAR, errs
    # Keras' attention at a padded query row weighs every key alike: not the description's, so not compared
    got = imported.layer_outputs(x)[attn]
    ref = reference_outputs(m.astype("float64"), x)[attn]
    assert error_stats(got, ref).rel > 1e-3


def test_keras_pooling_under_a_mask_without_attention_is_the_masked_mean(keras_dir):
    x = padded_ids(8, vocab=20).astype(np.int32)
    imported = load(f"{keras_dir / 'keras_net.py'}:pooled", x.shape)
    m = imported.model
    at = next(i for i, la in enumerate(m.layers) if la.kind == "global_avg_pool")
    assert m.layers[at].options["masked"] is True
    want = _keras_want(keras_dir, "pooled", x)
    assert error_stats(reference_forward(m.astype("float64"), x), want).rel <= BAR
    plain = m.replace_layer(at, dataclasses.replace(m.layers[at], options={"masked": False}))  # planted: mask ignored
    assert error_stats(reference_forward(plain.astype("float64"), x), want).rel > 1e-3


@pytest.mark.parametrize("name", ["raw", "nested"])
def test_keras_raw_add_or_a_nested_sequential_drops_the_mask_and_the_pool_is_refused(keras_dir, name):
    """keras.io's block as written: Keras' mask dies at the raw x + a (a raw op carries none) or at the nested
    Sequential (Keras warns it destroys the mask), so its pool averages the padded steps, which no source defines."""
    with pytest.raises(UnsupportedLayer, match=f"'{name}_pool'.*Keras masks it from layer None.*x \\+ a drops"):
        load(f"{keras_dir / 'keras_net.py'}:{name}", (4, 7))


@pytest.mark.parametrize("name, arg", [("flipped", "value_mask"), ("explicit", "attention_mask")])
def test_keras_explicit_masks_other_than_the_padding_are_refused(keras_dir, name, arg):
    """value_mask=ids == 0 (Keras would attend the padding only) and an explicit attention_mask: refused, naming the
    layer and the argument (the padding mask is read from Embedding(mask_zero=True), or value_mask=ids != 0)."""
    with pytest.raises(UnsupportedLayer, match=f"'{name}_attention'.*called with \\['{arg}'\\]"):
        load(f"{keras_dir / 'keras_net.py'}:{name}", (4, 7))


def test_torch_padding_mask_as_a_second_input_is_refused(torch_dir):
    """The description takes one input: a mask passed beside the ids is refused (computed from them, it imports)."""
    torch = load_framework("torch")
    from impls.importers import torch_import

    class TwoInputs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(20, 8)
            self.attn = torch.nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, ids, pad):
            x = self.embedding(ids)
            return self.attn(x, x, x, key_padding_mask=pad)[0].sum(1)

    with pytest.raises(UnsupportedLayer, match="forward takes 2 inputs"):
        torch_import.from_module(TwoInputs(), (4, 7), "m")


def test_keras_second_attention_under_a_mask_is_refused_with_the_measured_reason(keras_dir):
    """Measured: Keras' own output of two blocks is not the description's (its second attention attends the padded
    keys at run time); refused, naming the layer."""
    x = padded_ids(10).astype(np.int32)
    with pytest.raises(UnsupportedLayer, match="a second attention under the padding mask.*deletes them"):
        load(f"{keras_dir / 'keras_net.py'}:two", x.shape)


def test_the_padded_keras_classifier_ports_loads_alone_and_agrees(keras_dir, capsys):
    x = padded_ids(9).astype(np.int32)
    want = _keras_want(keras_dir, "model", x)
    got = ports_alone(keras_dir, f"{keras_dir / 'keras_net.py'}:model", x, want, capsys, "4,7")
    assert all(err <= AGREE for err in got.values()), got


def test_the_padded_keras_classifier_certifies(keras_dir, tmp_path):
    out = tmp_path / "cert"
    rc = cli.main(["certify", f"{keras_dir / 'keras_net.py'}:model", "--input-shape", "4,7", "--no-bench", "-o", str(out)])
    assert rc == 0, (out / "certificate.md").read_text()[:3000]
    cert = json.loads((out / "certificate.json").read_text())
    assert "attention" in cert["inputs"]["compared_steps"]["names"]


def test_a_planted_polarity_inversion_in_the_onnx_port_is_caught(torch_dir, monkeypatch):
    """The ONNX port's valid steps written t >= length (GreaterOrEqual for Less), in the attention's key mask and the
    masked mean alike: the onnxruntime voice leaves the reference."""
    from impls import unavailable_reason
    from impls.model import voices
    from impls.ports.onnx_port import builder

    if unavailable_reason("onnxruntime"):
        pytest.skip(unavailable_reason("onnxruntime"))
    x = padded_ids(11)
    m = load(f"{torch_dir / 'torch_net.py'}:filled", x.shape).model
    want = reference_forward(m.astype("float64"), x)
    assert error_stats(voices.build("onnxruntime", m, "float32").forward(x), want).rel <= AGREE
    real = builder._Graph.node
    monkeypatch.setattr(builder._Graph, "node", lambda g, op, *a, **k: real(g, "GreaterOrEqual" if op == "Less" else op, *a, **k))
    with np.errstate(all="ignore"):
        got = voices.build("onnxruntime", m, "float32").forward(x)
    assert not np.all(np.isfinite(got)) or error_stats(got, want).rel > 1e-3


def test_a_planted_polarity_inversion_in_the_keras_port_is_caught(torch_dir, monkeypatch):
    """The Keras port's value_mask= given as its negation (True at the padded steps): the keras voice leaves the
    reference."""
    from impls import unavailable_reason
    from impls.model import voices
    from impls.ports.keras_port import EMITTERS

    if unavailable_reason("keras"):
        pytest.skip(unavailable_reason("keras"))
    keras = load_framework("keras")
    x = padded_ids(12)
    m = load(f"{torch_dir / 'torch_net.py'}:filled", x.shape).model
    want = reference_forward(m.astype("float64"), x)
    assert error_stats(voices.build("keras", m, "float32").forward(x), want).rel <= AGREE
    entry = EMITTERS.get("multi_head_attention")
    wire = entry.meta["wire"]

    def inverted(pieces, opts, ins):
        mask = getattr(ins[1], "_keras_mask", None)
        assert mask is not None
        return pieces[-1](*ins, value_mask=keras.ops.logical_not(mask))

    assert wire is not None
    monkeypatch.setattr(EMITTERS, "_entries", {**EMITTERS._entries, "multi_head_attention": dataclasses.replace(
        entry, meta={**entry.meta, "wire": inverted})})  # fmt: skip
    got = voices.build("keras", m, "float32").forward(x)
    assert not np.all(np.isfinite(got)) or error_stats(got, want).rel > 1e-3


def test_the_keras_port_of_two_padded_blocks_imports_back_and_agrees(torch_dir, tmp_path, capsys):
    """The Keras port passes value_mask= explicitly (the graph records it), so its two attentions keep their mask at
    run time; the Keras importer reads that file back (the value's own mask given explicitly is the padding mask) to
    the same description, agreeing with torch at every layer's valid steps."""
    x = padded_ids(13)
    out = tmp_path / "port.keras"
    rc = cli.main(["port", f"{torch_dir / 'torch_net.py'}:model", "--to", "keras", "-o", str(out), "--input-shape", "4,7"])
    assert rc == 0, capsys.readouterr().err
    back = load(str(out), x.shape)
    m = back.model
    sources = m.mask_sources()
    attn = [i for i, la in enumerate(m.layers) if la.kind == "multi_head_attention"]
    assert len(attn) == 2 and all(sources[i] == 0 for i in attn)
    want = _torch_want(torch_dir, "model", x)
    assert error_stats(back.forward(x.astype(np.int64)), want).rel <= AGREE
    assert error_stats(reference_forward(m.astype("float64"), x), want).rel <= BAR
