"""The sequence task's bench rows (issue 25, item 5; bench/seqtask.py, bench/seqtrain.py): the Transformer's parameter
count is the GRU model's within the stated tolerance (computed from the descriptions), the rows are in full (not quick)
and share one comparison group across the architectures, every row builds and runs once at a tiny size with its check
passing, a wrong Adam in a step is caught, and the report pairs the architectures' ratios."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench import cases, groups, harness, prepare, seqtask, seqtrain
from impls.contract import tolerance
from reports import rnn_compare

SEED = cases.SEQ_TASK.sizes
TINY = cases.seq_task_size(B=3, T=6, I=5, H1=8, H2=6, CL=4, D=8, NH=2, L=1, sweep="test")
"""I != H, batch 3, a Transformer of one layer with two heads: every voice builds and steps it in well under a second."""


@pytest.mark.parametrize("sizes", [SEED, TINY.sizes], ids=["seed", "tiny"])
def test_the_transformer_has_the_gru_models_parameter_count(sizes):
    counts = seqtask.param_counts(sizes)
    gru, tr = counts["gru"], counts["transformer"]
    assert abs(tr - gru) / gru <= seqtask.PARAM_TOLERANCE, counts
    # the solved FFN width is the best integer: one unit more or less is no closer
    f = seqtask.matched_ffn(sizes)
    near = [abs(seqtask.model("transformer", sizes, g).param_count() - gru) for g in (f - 1, f, f + 1)]
    assert near[1] == min(near), (f, near)
    # the LSTM is the same model with 4 gate blocks to the GRU's 3: 4/3 of its recurrent weights, the same head
    d = dict(sizes)
    head = d["H2"] * d["CL"] + d["CL"]
    assert (counts["lstm"] - head) * 3 == (gru - head) * 4


def test_the_seed_sizes_and_their_counts():
    d = dict(SEED)
    assert (d["B"], d["T"], d["I"], d["CL"], d["H1"], d["H2"]) == (32, 100, 64, 10, 128, 64)  # the seed's section 4.1
    assert seqtask.param_counts(SEED)["gru"] == 112_394  # 3 (I H + H H) + 6 H per GRU layer, canonical b_x and b_h
    m = seqtask.model("transformer", SEED)
    assert {la.kind for la in m.layers} == {"dense", "multi_head_attention", "add", "layer_norm", "global_avg_pool"}
    assert sum(la.kind == "multi_head_attention" for la in m.layers) == d["L"] == 2


def test_rows_are_in_full_float32_every_voice_forward_and_the_optimisers_step():
    assert not [r for r in cases.rows("quick", ("cpu",)) if r.work in cases.SEQ_WORKS]
    rows = [r for r in cases.rows("full", ("cpu",)) if r.work in cases.SEQ_WORKS]
    assert {r.precision for r in rows} == {"float32"}
    fwd = {(r.impl, r.variant) for r in rows if r.pass_ == "fwd"}
    assert {i for i, _ in fwd} == set(cases.DEFAULT_MODE) and {a for _, a in fwd} == set(seqtask.ARCHS)
    assert {(r.impl, r.variant) for r in rows if r.pass_ == "train_step"} == {
        (i, a) for i in cases.SEQ_TRAIN_IMPLS for a in seqtask.ARCHS}
    # one comparison group per pass holds every architecture: their ratios are paired
    assert {r.group for r in rows} == {f"seq_task-cpu-float32-{cases.SEQ_TASK.token}-{p}" for p in cases.SEQ_PASSES}
    assert len({r.id for r in rows}) == len(rows)


def _tiny_rows(pass_: str, impls=None) -> list[cases.Row]:
    rows = [r for r in cases.seq_rows(("cpu",), "full", sizes=[TINY]) if r.pass_ == pass_]
    return [r for r in rows if impls is None or r.impl in impls]


def _run_once(rows) -> dict:
    """Every row prepared, called once and checked (timing off, as `pytest bench/ --benchmark-disable`)."""
    prepare._REFS.clear()
    s = groups.Session(harness.Options("full", harness.TIMING["full"], enabled=False))
    s.register(rows)
    return {r.id: s.outcome(r) for r in rows}


CASES = ([("fwd", impl, "transformer") for impl in ("numpy", "torch", "torch_nn", "keras", "onnxruntime")]
         + [("train_step", impl, arch) for impl in ("numpy", "torch_nn") for arch in seqtask.ARCHS]
         + [("train_step", "keras", "lstm"), ("train_step", "flax", "transformer")])
"""What CI runs once at the tiny size (~9 s of CPU with the frameworks loaded): the new model forward through the one
forward path (voices.build, compile_for) in the voices that build it without compiling, every architecture's step where
it is cheap, Keras' step on its single LSTM bias (the update compared on trainref's projection) and Flax's step (optax,
canonical gradients). The rest (TensorFlow, JAX and Flax forward, Keras' and Flax's other steps) is what
`pytest bench/ --profile full --bench-sweep seq_task --benchmark-disable` runs once at the seed's sizes, every row."""


@pytest.mark.parametrize(("pass_", "impl", "arch"), CASES, ids=["-".join(c) for c in CASES])
def test_every_row_builds_runs_once_and_passes_its_check(pass_, impl, arch):
    rows = [r for r in _tiny_rows(pass_, (impl,)) if r.variant == arch]
    out = _run_once(rows)
    assert len(out) == 1
    for rid, o in out.items():
        assert o.skip is None and o.error is None, (rid, o.skip, o.error)
        info = o.info
        assert info["err_ok"] is True and info["max_rel_err"] <= info["tolerance"], (rid, info.get("err_note"))
        assert info["params"] == seqtask.param_counts(TINY.sizes) and info["flops"] > 0
        if pass_ == "train_step":
            assert info["update_err"] <= info["update_tolerance"], (rid, info["update_err"])
            assert ("parametrization" in info) == (impl == "keras" and arch == "lstm")


def test_a_step_in_another_adam_convention_fails_its_check(monkeypatch):
    """Planted bug: torch.nn's optimiser built with ten times the learning rate: the update check catches it (the
    step's gradients are right)."""
    row = _tiny_rows("train_step", ("torch_nn",))[0]
    monkeypatch.setattr(seqtrain.training, "LR", seqtrain.training.LR * 10)
    prep = seqtrain.prepare_seq(row, prepare.load(row.impl))  # the optimiser takes the wrong lr here
    monkeypatch.undo()
    err, _note, ok, extra = prep.check(prep.fn())
    assert err <= harness.tolerance(row.precision, row.work)  # the gradients are right
    assert not ok and extra["update_err"] > extra["update_tolerance"]


def test_keras_single_lstm_bias_needs_the_projection(monkeypatch):
    """Planted bug: the update compared on the canonical model, as if keras.layers.LSTM held b_x and b_h apart: its
    step moves their sum once (b_h reads back 0), so the canonical update is far off; the projected one agrees."""
    row = _tiny_rows("train_step", ("keras",))[1]
    assert row.variant == "lstm"
    prepare._REFS.clear()
    prep = seqtrain.prepare_seq(row, prepare.load(row.impl))
    out = prep.fn()
    monkeypatch.setattr(seqtrain.trainref, "project", lambda voice, model: (model, {}, []))
    _err, _note, ok, extra = prep.check(out)
    assert not ok and extra["update_err"] > 100 * extra["update_tolerance"]


def test_over_the_table_a_step_passes_only_within_numpy_float32s_own_error(monkeypatch):
    """The calibrated bar (impls/contract/tolerance.py, CALIBRATED_WORKS): with the table's float32 entry made tiny, the
    step is judged against 10x NumPy's own float32 error on the same inputs; gradients 1% off are far beyond it."""
    row = _tiny_rows("train_step", ("numpy",))[-1]
    monkeypatch.setitem(tolerance.TOLERANCES, "float32", 1e-12)
    prepare._REFS.clear()
    prep = seqtrain.prepare_seq(row, prepare.load(row.impl))
    loss, grads = prep.fn()
    err, note, _ok, extra = prep.check((loss, grads))
    assert 0 < extra["numpy_float32_err"] and err <= extra["calibrated_tolerance"]
    assert extra["calibrated_tolerance"] == pytest.approx(tolerance.CALIBRATED_FACTOR * extra["numpy_float32_err"])
    assert "NumPy's own float32 step" in note
    err, _note, _ok, extra = prep.check((loss, {k: g * 1.01 for k, g in grads.items()}))
    assert err > extra["calibrated_tolerance"]


def test_a_wrong_forward_fails_its_check():
    """Planted bug: an output off by 1e-3 (relative) is over float32's bar."""
    row = _tiny_rows("fwd", ("numpy",))[-1]
    prepare._REFS.clear()
    prep = seqtrain.prepare_seq(row, prepare.load(row.impl))
    err = prep.check(prep.fn() * 1.001)[0]
    assert err > harness.tolerance(row.precision, row.work)


# --------------------------------------------------------------------------- the report


def _row(variant, impl, lr, group="seq_task-cpu-float32-X-fwd", median=0.01):
    return {"work": "seq_task", "variant": variant, "impl": impl, "mode": "eager", "device": "cpu",
            "precision": "float32", "pass": "fwd", "shape": "B32 T100 I64 C10", "t_median": median,
            "p_lr": tuple(lr), "p_group": group, "p_epochs": tuple(e for e in range(4) for _ in range(5)),
            "p_processes": None, "p_model": None, "id": f"{variant}-{impl}", "flops": {"gru": 3.0, "lstm": 4.0,
            "transformer": 2.0}[variant], "sizes": dict(SEED), "params": seqtask.param_counts(SEED)}  # fmt: skip


def test_the_report_pairs_each_architecture_with_the_gru_of_its_voice():
    g = np.random.default_rng(0)
    base = 0.02 * g.standard_normal(20)  # what moved each whole block: cancels in a paired ratio
    gru = base + 0.01 * g.standard_normal(20)
    df = pd.DataFrame([_row("gru", "torch_nn", gru), _row("lstm", "torch_nn", gru + np.log(1.3) + 0.005 * g.standard_normal(20)),
                       _row("transformer", "torch_nn", gru + np.log(0.5) + 0.005 * g.standard_normal(20)),
                       _row("gru", "keras", base), _row("lstm", "keras", base + 0.3, group="another group")])  # fmt: skip
    cmp = rnn_compare.seq_comparison(df).set_index("voice")
    lstm, tr = cmp.at["torch_nn", "LSTM / GRU"], cmp.at["torch_nn", "Transformer / GRU"]
    ratio, lo, hi = (float(v) for v in lstm.replace("×", "").replace("(", " ").replace("–", " ").rstrip(")").split())
    assert abs(ratio - 1.3) < 0.02 and lo <= ratio <= hi and 0 < hi - lo < 0.05  # paired: the blocks' drift cancels
    assert tr.startswith("0.50×")
    assert cmp.at["keras", "LSTM / GRU"].endswith("(unpaired)")  # not from one group's blocks: no interval claimed
    assert cmp.at["keras", "Transformer / GRU"] == "—"
    text = "\n".join(rnn_compare.seq_section(df))
    assert "112,394 parameters" in text and "against the GRU's" in text and "LSTM 1.33" in text


def test_no_sequence_rows_no_section():
    assert rnn_compare.seq_section(pd.DataFrame([{**_row("gru", "numpy", [0.0] * 20), "work": "gru"}])) == []


def test_flops_and_bytes_of_a_step_exceed_the_forward():
    for a in seqtask.ARCHS:
        assert seqtask.row_flops(a, SEED, "train_step") == 3 * seqtask.row_flops(a, SEED, "fwd") > 0
        assert seqtask.row_bytes(a, SEED, "train_step", 4) > seqtask.row_bytes(a, SEED, "fwd", 4) > 0
    assert cases.SEQ_TASK.sweep == "seq_task"


def test_a_sweep_selection_that_leaves_a_test_file_no_rows_still_collects(monkeypatch):
    """`--bench-sweep seq_task` leaves test_ops/test_models/test_layers an empty parameter set, whose one item holds
    pytest's NOTSET: the groups register rows and ceilings only (it raised AttributeError at collection)."""
    from types import SimpleNamespace

    from _pytest.compat import NOTSET

    from bench import conftest

    got = []
    monkeypatch.setattr(conftest, "bench_session", lambda config: SimpleNamespace(register=got.extend))
    row = _tiny_rows("fwd", ("numpy",))[0]
    items = [SimpleNamespace(callspec=SimpleNamespace(params={"op_row": NOTSET})),
             SimpleNamespace(callspec=SimpleNamespace(params={"seq_row": row}))]  # fmt: skip
    conftest.pytest_collection_finish(SimpleNamespace(items=items, config=None))
    assert got == [row]
