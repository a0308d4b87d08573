"""The benchmark matrix and its helpers (bench/cases.py, bench/works.py, bench/flops.py), framework-free:
readable unique ids, coverage of the quick profile, DeepBench's sizes and convention, tie-free pooling
inputs, and bfloat16 rounding as the frameworks round."""

from __future__ import annotations

import numpy as np
import pytest

from bench import cases, flops
from bench.works import make_inputs, pool_input
from impls import GRU_VARIANTS, IMPLEMENTATIONS
from impls.contract import limits
from impls.contract.inputs import round_bf16, round_to

DEVICE_SETS = [("cpu",), ("cpu", "cuda"), ("cuda",)]


@pytest.mark.parametrize("profile", cases.PROFILES)
@pytest.mark.parametrize("devices", DEVICE_SETS, ids="+".join)
def test_row_ids_are_unique_and_name_their_parts(profile, devices):
    rows = cases.rows(profile, devices)
    ids = [r.id for r in rows]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1][:5]
    for r in rows:
        assert r.id.startswith(f"{r.work}-") and r.id.endswith(f"-{r.pass_}") and f"-{r.device}-{r.precision}-" in r.id
        assert " " not in r.id and "(" not in r.id
    cids = [c.id for c in cases.ceilings(profile, devices)]
    assert len(cids) == len(set(cids))


def test_quick_covers_every_implementation_work_pass_and_cpu_dtype():
    """Every implementation, work and pass in both CPU dtypes, except what impls.contract.limits declares refused
    and issue 11's voices' float64 (in full only; cases.QUICK_FLOAT32_ONLY says why)."""
    rows = cases.rows("quick", ("cpu",))
    seen = {(r.impl, r.work, r.pass_, r.precision) for r in rows}
    for impl in IMPLEMENTATIONS:
        for work in cases.OP_WORKS + cases.MODEL_WORKS:
            passes = ("fwd", "fwd+bwd") + (("train_step",) if work in cases.MODEL_WORKS and impl in cases.TRAIN_IMPLS else ())
            for pass_ in passes:
                for prec in ("float64", "float32"):
                    refused = limits.refusal(impl, cases.contract_op(work, pass_), prec) is not None
                    expected = not refused and (prec == "float32" or impl not in cases.QUICK_FLOAT32_ONLY)
                    assert ((impl, work, pass_, prec) in seen) == expected, (impl, work, pass_, prec)
    assert not any(r.pass_ == "train_step" and r.impl not in cases.TRAIN_IMPLS for r in rows)
    full = {(r.impl, r.precision) for r in cases.rows("full", ("cpu",))}
    assert all((impl, "float64") in full for impl in cases.QUICK_FLOAT32_ONLY)
    full_rows = cases.rows("full", ("cpu",))
    for impl, variants in GRU_VARIANTS.items():  # quick: the frameworks' two variants; full: every one computed
        assert {r.variant for r in rows if r.impl == impl and r.work == "gru"} == set(variants) & set(cases.QUICK_VARIANTS)
        assert {r.variant for r in full_rows if r.impl == impl and r.work == "gru"} == set(variants)
    for impl in IMPLEMENTATIONS:  # the LSTM and bidirectional layers: quick in float32, full in both precisions
        for work in cases.LAYER_WORKS:
            assert (impl, work, "fwd", "float32") in seen and (impl, work, "fwd", "float64") not in seen
            assert {r.precision for r in full_rows if r.impl == impl and r.work == work} >= {"float32"}
        grads = limits.refusal(impl, "lstm_vjp") is None
        assert ((impl, "lstm", "fwd+bwd", "float32") in seen) == grads
    assert {r.precision for r in full_rows if r.work in cases.LAYER_WORKS} == {"float32", "float64"}


def test_quick_labels_its_one_eager_keras_row_and_times_tf_under_tf_function():
    rows = cases.rows("quick", ("cpu",))
    eager = [r for r in rows if r.framework in ("tensorflow", "keras") and r.mode == "eager"]
    assert len(eager) == 1 and "-keras-eager-" in eager[0].id
    assert all(r.mode == "tf.function" for r in rows if r.framework in ("tensorflow", "keras") and r not in eager)
    assert not any(r.mode == "torch.compile" for r in rows)


def test_cuda_rows_add_reduced_precisions_and_numpy_stays_on_cpu():
    rows = cases.rows("quick", ("cpu", "cuda"))
    assert {r.precision for r in rows if r.device == "cuda"} == {"float64", "float32", "tf32", "bfloat16", "float16"}
    assert all(r.device == "cpu" for r in rows if r.impl == "numpy")
    assert all(r.dtype == "float32" for r in rows if r.precision == "tf32")


def test_deepbench_rows_use_deepbench_sizes_and_convention():
    train = {(H, B, T) for H, B, T in cases.DEEPBENCH_TRAIN}
    for devices in (("cpu",), ("cuda",)):
        rows = cases.rows("deepbench", devices)
        assert rows and all(r.work == "gru" and r.convention == "deepbench" and r.size.sweep == "deepbench" for r in rows)
        for r in rows:
            d = r.size.dims
            assert d["I"] == d["H"] and 512 <= d["H"] <= 2816 and 1 <= d["B"] <= 64 and 1 <= d["T"] <= 1500
    assert {(r.size.dims["H"], r.size.dims["B"], r.size.dims["T"]) for r in cases.rows("deepbench", ("cuda",))} >= train


def test_deepbench_convention_counts_only_the_recurrent_half_when_input_equals_hidden():
    d = cases.gru_size(4, 9, 16, 16, "deepbench").dims
    for pass_ in ("fwd", "fwd+bwd"):
        assert 2 * flops.row_flops("gru", d, pass_, "deepbench") == flops.row_flops("gru", d, pass_, "gemm")
    assert flops.row_flops("gru", d, "fwd+bwd") == 3 * flops.row_flops("gru", d, "fwd")


def test_bytes_grow_with_the_pass_and_the_itemsize():
    d = cases.seed_cnn_model_size(8, "seed").dims
    b = [flops.row_bytes("seed_cnn_model", d, p, 4) for p in ("fwd", "fwd+bwd", "train_step")]
    assert b[0] < b[1] < b[2]
    assert flops.row_bytes("seed_cnn_model", d, "fwd", 8) == 2 * b[0]


@pytest.mark.parametrize("P, HI", [(2, 26), (2, 11), (3, 10)])
def test_pool_inputs_have_no_ties_inside_a_window_even_in_bfloat16(P, HI):
    x = round_bf16(pool_input(3, HI, HI, 5, P, seed=7))
    OH = HI // P
    win = x[:, : OH * P, : OH * P].reshape(3, OH, P, OH, P, 5).transpose(0, 1, 3, 5, 2, 4).reshape(-1, P * P)
    s = np.sort(win, axis=1)
    assert np.all(np.diff(s, axis=1) > 0)
    assert len(np.unique(np.argmax(win, axis=1))) == P * P  # the maximum is not always in the same place


def test_round_bf16_rounds_to_nearest_even():
    ulp = 2.0**-7  # bfloat16 spacing in [1, 2)
    x = np.array([1.0 + ulp / 2, 1.0 + 3 * ulp / 2, 1.0 + 0.6 * ulp, -(1.0 + 0.4 * ulp)])
    np.testing.assert_array_equal(round_bf16(x), [1.0, 1.0 + 2 * ulp, 1.0 + ulp, -1.0])


def test_round_to_rounds_weights_inside_dataclasses_and_keeps_float64():
    a = make_inputs("gru", cases.gru_size(2, 3, 5, 4, "seed").dims, "fwd+bwd", "t")
    r = round_to(a, "float16")
    assert r["weights"].W.dtype == np.float64 and not np.array_equal(r["weights"].W, a["weights"].W)
    np.testing.assert_array_equal(r["dy"], a["dy"].astype(np.float16).astype(np.float64))


def test_set_threads_rejects_non_positive_counts():
    from impls import frameworks

    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=r"threads must be a positive int or None"):
            frameworks.set_threads(bad)
    assert frameworks.threads() is None


def test_a_thread_limit_tensorflow_refuses_is_said_once_and_later_loads_still_work():
    """TensorFlow fixes its thread pools when its runtime starts. set_threads says so (RuntimeError); a framework
    loaded afterwards (here TensorFlow again and ONNX, as the certificate's versions() does) must not raise it again:
    an in-process `nnparity certify --no-bench` after a timed one failed that way."""
    from impls import frameworks
    from verify.conftest import load_framework

    tf, torch = load_framework("tensorflow"), load_framework("torch")
    tf.constant(1.0) + 1.0  # the runtime has started
    before, torch_threads = frameworks.threads(), torch.get_num_threads()
    other = 2 if tf.config.threading.get_intra_op_parallelism_threads() == 1 else 1
    try:
        with pytest.raises(RuntimeError, match="TensorFlow already started"):
            frameworks.set_threads(other)
        assert frameworks.load("tensorflow") is tf and frameworks.load("onnx") is not None
        assert torch.get_num_threads() == other  # the frameworks that could take the limit took it
    finally:
        frameworks.set_threads(before)
        torch.set_num_threads(torch_threads)


def test_bench_sweep_option_rejects_unknown_names_and_keeps_known_ones():
    from bench import conftest

    class Config:
        def __init__(self, value):
            self.value = value

        def getoption(self, name, default=None):
            return self.value

    assert conftest._sweeps(Config("hidden, batch")) == {"hidden", "batch"}
    assert conftest._sweeps(Config(None)) == set()
    with pytest.raises(pytest.UsageError, match=r"'hidden,nope': sweeps are seed, hidden, seq_len, batch, deepbench"):
        conftest._sweeps(Config("hidden,nope"))
