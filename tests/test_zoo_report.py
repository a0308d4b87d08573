"""The zoo's report (reports/zoo_render.py, reports/zoo.py) on synthetic results: every cell status, the totals, the
reasons stated once with their models, the runs' commands and matmul ceilings, incremental writing, --only merging,
the README section rewritten between its markers and kept equal to what reports/zoo.json renders; and the zoo's
list itself (issue 24's models, their constructors and input shapes, unlisted models of the same families)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from reports import zoo, zoo_models, zoo_render

ROOT = Path(__file__).resolve().parents[1]


def _port(rc=0, rel=1e-7, load_rc=0, error=None, load_error=None, stopped=None, s=3.0, rel64=None, own32=None,
          float64=None):  # fmt: skip
    cell = {"rc": rc, "s": s, "error": error, "stopped": stopped}
    if rc == 0:
        cell["load"] = {"rc": load_rc, "s": 2.0, "error": load_error}
        if load_rc == 0:
            cell["load"] |= {"rel": rel, "loaded": ["torch"], "rel64": rel64, "own32": own32}
            if float64 is not None:
                cell["load"]["float64"] = float64
    return cell


def _model(name, ports, certify, prepare_rc=0, run=0):
    e = zoo_models.by_name(name)
    return {"name": name, "source": e.source, "listed": e.listed, "constructor": e.constructor,
            "input_shape": list(e.input_shape), "limit_s": 600, "commit": "abc1234", "run": run,
            "prepare": {"rc": prepare_rc, "s": 9.0, "error": None if prepare_rc == 0 else "ValueError: no"},
            "ports": ports, "certify": certify}  # fmt: skip


def _run(k=0, command="python -m reports zoo"):
    return {"command": command, "commit": "abc1234", "started": "2026-12-07T11:45:00+00:00", "cpu": "Test CPU",
            "cores": 2, "models": [], "matmul_gflops_start": 98.5, "matmul_gflops_end": 97.0,
            "finished": "2026-12-07T12:10:00+00:00", "contention": []}  # fmt: skip


REFUSED = "net.keras: layer 3 'relu6' (ReLU max_value=6) is not supported"


@pytest.fixture
def results():
    return {"runs": [_run()], "models": {
        "torchvision/resnet18": _model("torchvision/resnet18", {
            "flax": _port(load_rc=1, load_error="ImportError: x"), "keras": _port(rel=3.2e-7, s=5.0),
            "onnx": _port(rel=4.5e-3, s=4.0)},
            {"rc": 0, "s": 100.0, "verdict": "pass"}),
        "keras/MobileNet": _model("keras/MobileNet", {
            "torch": _port(rc=2, error=REFUSED), "onnx": _port(rc=2, error=REFUSED), "flax": _port(rc=2, error=REFUSED)},
            {"rc": 2, "s": 8.0, "error": REFUSED}),
        "onnx/vgg19": _model("onnx/vgg19", {
            "torch": _port(rc=1, error="timed out after 600 s", stopped="timed out after 600 s"),
            "keras": {"rc": None, "s": 0.0, "error": "not run: the model's 600 s were spent"}, "flax": _port()},
            {"rc": 1, "s": 50.0, "verdict": "fail", "n_failures": 3, "failures": ["voices keras float32: 1e-3 > 2e-5"],
             "first_diverging_layer": "conv_4"}),
        "keras/ResNet101": _model("keras/ResNet101", {}, None, prepare_rc=1),
    }}  # fmt: skip


def test_cell_statuses(results):
    m = results["models"]
    assert [zoo_render.port_status(m["torchvision/resnet18"]["ports"][t]) for t in ("keras", "onnx", "flax")] == [
        "agreed", "off", "load failed"]
    assert zoo_render.port_status(m["keras/MobileNet"]["ports"]["torch"]) == "refused"
    assert [zoo_render.port_status(m["onnx/vgg19"]["ports"][t]) for t in ("torch", "keras", "flax")] == [
        "port failed", "not run", "agreed"]
    assert [zoo_render.certify_status(m[n]["certify"]) for n in ("torchvision/resnet18", "keras/MobileNet", "onnx/vgg19")] == [
        "pass", "refused", "fail"]  # fmt: skip
    assert zoo_render.port_status(_port(rel=zoo_render.BAR)) == "agreed"  # the bar itself passes
    assert zoo_render.port_status(_port(rel=zoo_render.BAR * 1.01)) == "off"


def test_the_report_states_each_number_and_each_reason_once(results):
    md = zoo_render.render(results)
    row = next(line for line in md.splitlines() if line.startswith("| `torchvision/resnet18`"))
    assert "| source | 3.2e-07 | **4.5e-03 off** | load failed [" in row and "| PASS |" in row
    row = next(line for line in md.splitlines() if line.startswith("| `keras/MobileNet`"))
    refs = set(re.findall(r"\[(\d+)\]\(#r\d+\)", row))
    assert len(refs) == 1, row  # one reason, said once for every target and the certificate
    reasons = md.split("## Reasons", 1)[1]
    assert reasons.count("relu6") == 1 and "keras/MobileNet" in reasons
    assert "**FAIL** (3 checks;" in md and "first diverging layer `conv_4`" in md
    assert "`keras/ResNet101 *` | 3×64×64×3 | prepare failed" in md  # not in issue 24's list: starred
    assert "python -m reports zoo" in md and "at commit `abc1234`" in md
    assert "matmul ceiling 98.5 -> 97.0 GFLOP/s" in md and "Test CPU, 2 cores" in md
    assert "prepare 9, port 5/4/3, load 2/2/2, certify 100" in md  # in the table's column order


def test_totals_count_every_status(results):
    t = zoo_render.totals(results)
    assert t[("torch", "keras")] == {"agreed": 1} and t[("torch", "onnx")] == {"off": 1}
    assert t[("torch", "flax")] == {"load failed": 1}
    assert t[("keras", "torch")] == {"refused": 1, "prepare failed": 1}
    assert t[("onnx", "torch")] == {"port failed": 1} and t[("onnx", "keras")] == {"not run": 1}
    assert t[("certify", "keras")] == {"refused": 1, "prepare failed": 1}
    md = zoo_render.render(results)
    assert "| torchvision | Keras | 1 | 1 | 0 | 0 | 0 | 0 | 0 | 0 |" in md
    assert "| keras.applications | torch | 2 | 0 | 0 | 0 | 1 | 0 | 0 | 1 |" in md
    assert "| keras.applications | 2 | 0 | 0 | 1 | 0 | 1 |" in md


def test_a_long_reason_is_cut_and_marked():
    r = zoo_render.Reasons()
    r.ref("x" * 1000, "a")
    (text,) = r.texts
    assert len(text) == zoo_render.REASON_CHARS and text.endswith("…")


def test_the_readme_section_is_replaced_between_its_markers_only(results):
    text = f"intro\n{zoo_render.BEGIN}\nold table\n{zoo_render.END}\nafter\n"
    out = zoo_render.replace_section(text, zoo_render.readme_table(results))
    assert out.startswith("intro\n") and out.endswith(f"{zoo_render.END}\nafter\n") and "old table" not in out
    assert "| `torchvision/resnet18` | source | ✓ | off | load failed | ✓ |" in out
    assert "0 of 4 zoo models port to every other framework" in out and "3 were certified (1 PASS)" in out
    with pytest.raises(ValueError):
        zoo_render.replace_section("no markers", "x")


def test_the_readmes_zoo_section_is_what_the_published_results_render():
    """README.md's table is generated (python -m reports zoo --no-run --readme README.md), never edited by hand."""
    results = json.loads((ROOT / "reports" / "zoo.json").read_text())
    readme = (ROOT / "README.md").read_text()
    want = zoo_render.replace_section(readme, zoo_render.readme_table(results, ROOT / "reports" / "ZOO.md",
                                                                      ROOT / "README.md"))  # fmt: skip
    assert readme == want
    assert (ROOT / "reports" / "ZOO.md").read_text() == zoo_render.render(results)


def test_only_reruns_merge_into_the_earlier_results(tmp_path, results, monkeypatch):
    """--only replaces those models' results and keeps the others; results are written after every model."""
    (tmp_path / "zoo.json").write_text(json.dumps(results))
    seen = []

    def fake(e, work, limit, memory, steps=zoo.STEPS):
        seen.append((e.name, json.loads((tmp_path / "zoo.json").read_text())["models"].keys()))
        return _model(e.name, {t: _port(rel=1e-7) for t in e.targets}, {"rc": 0, "s": 1.0, "verdict": "pass"})

    monkeypatch.setattr(zoo, "run_model", fake)
    monkeypatch.setattr(zoo, "_commit", lambda: "def5678")
    assert zoo.main(["--only", "keras/MobileNet", "onnx/vgg19", "-o", str(tmp_path / "ZOO.md"),
                     "--model-timeout", "5"]) == 0  # fmt: skip
    got = json.loads((tmp_path / "zoo.json").read_text())
    assert set(got["models"]) == set(results["models"])
    assert got["models"]["keras/MobileNet"]["run"] == 1 and got["runs"][1]["commit"] == "def5678"
    assert got["models"]["torchvision/resnet18"]["run"] == 0 and got["runs"][0]["commit"] == "abc1234"
    assert "keras/MobileNet" in seen[1][1] and got["models"]["keras/MobileNet"]["ports"]["torch"]["rc"] == 0
    md = (tmp_path / "ZOO.md").read_text()
    assert "--only keras/MobileNet onnx/vgg19" in md and "at commit `def5678`" in md and "at commit `abc1234`" in md


def test_names_are_chosen_whole_or_by_a_unique_short_name():
    assert [e.name for e in zoo.select(["resnet18", "keras/VGG16"], False)] == ["torchvision/resnet18", "keras/VGG16"]
    with pytest.raises(KeyError, match="names"):
        zoo.select(["resnet50"], False)  # torchvision's and ONNX's
    with pytest.raises(KeyError, match="not in the zoo"):
        zoo.select(["lenet"], False)
    assert [e.name for e in zoo.select(None, True)] == list(zoo_models.SUBSET)


def test_bad_usage_is_exit_2_and_writes_nothing(tmp_path, capsys):
    assert zoo.main(["--only", "lenet", "-o", str(tmp_path / "ZOO.md")]) == 2
    assert "not in the zoo" in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_rel_error_is_relative_to_the_sources_largest_value():
    want = np.array([[1.0, -4.0], [2.0, 0.5]], np.float32)
    assert zoo.rel_error(want + np.float32(0.004), want) == pytest.approx(1e-3, rel=1e-4)
    assert zoo.rel_error(want[:1], want) == float("inf") and zoo.rel_error(want * np.nan, want) == float("inf")


def test_the_zoo_lists_issue_24s_models_and_more_of_their_families():
    listed = {e.name for e in zoo_models.MODELS if e.listed}
    assert len(listed) == 14 + 10 + 6
    assert {"torchvision/googlenet", "keras/InceptionV3", "onnx/bvlc_alexnet"} <= listed
    unlisted = [e for e in zoo_models.MODELS if not e.listed]
    assert {e.source for e in unlisted} == {"torch", "keras", "onnx"} and len(unlisted) >= 12
    by = {e.name: e for e in zoo_models.MODELS}
    assert by["torchvision/vgg11"].input_shape == (3, 3, 32, 32) and by["keras/InceptionV3"].input_shape == (3, 75, 75, 3)
    assert by["keras/Xception"].input_shape == (3, 71, 71, 3) and by["onnx/vgg19"].input_shape == (3, 3, 224, 224)
    assert "aux_logits=False" in by["torchvision/googlenet"].constructor
    assert all("weights=None" in e.constructor for e in zoo_models.MODELS if e.source != "onnx")
    assert all(e.source in ("torch", "keras", "onnx") and e.source not in e.targets and len(e.targets) == 3
               for e in zoo_models.MODELS)  # fmt: skip
    assert len({e.name for e in zoo_models.MODELS}) == len(zoo_models.MODELS)
    assert {zoo_models.by_name(n).source for n in zoo_models.SUBSET} == {"torch", "keras", "onnx"}


def test_the_torch_source_file_draws_batchnorm_statistics_like_a_trained_models(tmp_path):
    """The file nnparity is pointed at seeds itself: a BatchNorm's running statistics those of a seeded batch, moved
    (variance positive and not 1, mean not 0), its affine scale not 1; every constant-initialised parameter drawn;
    the same model twice."""
    from impls import frameworks

    frameworks.load("torchvision")
    torch = frameworks.load("torch")
    import runpy

    f = tmp_path / "net.py"
    f.write_text(zoo_models.torch_source(zoo_models.by_name("torchvision/mnasnet0_5")))
    a, b = runpy.run_path(str(f))["make"](), runpy.run_path(str(f))["make"]()
    assert not a.training
    bns = [m for m in a.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(float(m.running_var.min()) > 0 and float((m.running_var - 1).abs().max()) > 0.05 for m in bns)
    assert all(float(m.running_mean.abs().max()) > 0.01 and float((m.weight.detach() - 1).abs().max()) > 0 for m in bns)
    torch.manual_seed(5)
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    with torch.no_grad():  # statistics that fit the data: the output keeps a sensible scale (not one-hot, not 0)
        y = a(x)
    assert 0.1 < float(y.abs().max()) < 100 and float((y[0] - y[1]).abs().max()) > 1e-3
    for (n, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), n
        if p.is_floating_point() and p.numel() > 1:
            assert not bool((p == p.flatten()[0]).all()), f"{n} is one constant"


def test_the_onnx_light_model_gets_seeded_weights_at_batch_3(tmp_path):
    """Every ConstantOfShape weight replaced by an initializer; BatchNorm variances positive; batch 3 end to end;
    ONNX Runtime runs it and gives different outputs for different rows."""
    from impls import frameworks

    onnx, ort = frameworks.load("onnx"), frameworks.load("onnxruntime")
    out = tmp_path / "net.onnx"
    zoo_models.onnx_source(zoo_models.by_name("onnx/resnet50"), out)
    m = onnx.load(str(out))
    assert not [n for n in m.graph.node if n.op_type == "ConstantOfShape"]
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
    variances = [inits[n.input[4]] for n in m.graph.node if n.op_type == "BatchNormalization"]
    assert len(variances) == 53 and all(v.min() > 0 and np.abs(v - 1).max() > 0.05 for v in variances)
    assert [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim] == [3, 3, 224, 224]
    s = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    y = s.run(None, {s.get_inputs()[0].name: np.random.default_rng(0).uniform(-1, 1, (3, 3, 224, 224)).astype(np.float32)})[0]
    assert y.shape == (3, 1000) and np.isfinite(y).all() and np.abs(y[0] - y[1]).max() > 1e-6
    assert y.max() < 0.9  # a softmax that is not one-hot: the statistics fit the data


def test_a_certify_only_run_keeps_the_ports_and_a_merge_folds_another_runs_results(tmp_path, results, monkeypatch):
    """--steps certify replaces only the certificate (its run stated with it); --merge folds another results file in,
    its runs appended and its step results winning."""
    (tmp_path / "zoo.json").write_text(json.dumps(results))
    monkeypatch.setattr(zoo, "_commit", lambda: "c0ffee1")
    monkeypatch.setattr(zoo, "run_model", lambda e, work, limit, memory, steps: {
        "name": e.name, "source": e.source, "listed": e.listed, "constructor": e.constructor,
        "input_shape": list(e.input_shape), "prepare": {"rc": 0, "s": 1.0, "error": None}, "ports": {},
        "certify": {"rc": 0, "s": 7.0, "verdict": "pass"}})  # fmt: skip
    assert zoo.main(["--only", "onnx/vgg19", "--steps", "certify", "-o", str(tmp_path / "ZOO.md")]) == 0
    got = json.loads((tmp_path / "zoo.json").read_text())["models"]["onnx/vgg19"]
    assert got["certify"] == {"rc": 0, "s": 7.0, "verdict": "pass", "run": 1}
    assert got["ports"]["flax"]["run"] == 0 and got["ports"]["flax"]["load"]["rel"] == 1e-7
    other = {"runs": [_run(command="python -m reports zoo --steps ports")], "models": {
        "keras/MobileNet": _model("keras/MobileNet", {t: _port(rel=5e-7) for t in ("torch", "onnx", "flax")}, None)}}
    (tmp_path / "other.json").write_text(json.dumps(other))
    assert zoo.main(["--no-run", "--merge", str(tmp_path / "other.json"), "-o", str(tmp_path / "ZOO.md")]) == 0
    merged = json.loads((tmp_path / "zoo.json").read_text())
    assert len(merged["runs"]) == 3 and merged["runs"][2]["command"] == "python -m reports zoo --steps ports"
    m = merged["models"]["keras/MobileNet"]
    assert m["ports"]["torch"]["load"]["rel"] == 5e-7 and m["ports"]["torch"]["run"] == 2
    assert m["certify"]["rc"] == 2 and m["certify"]["run"] == 0  # the certificate it had, kept
    md = (tmp_path / "ZOO.md").read_text()
    assert md.count("GFLOP/s (NumPy float32 1024³ matmul on every core") == 3 and "--steps certify" in md  # one per run
    assert zoo.main(["--no-run", "--merge", str(tmp_path / "other.json"), "-o", str(tmp_path / "ZOO.md")]) == 0
    again = json.loads((tmp_path / "zoo.json").read_text())  # merged twice: its run is not added again
    assert len(again["runs"]) == 3 and again["models"]["keras/MobileNet"]["ports"]["torch"]["run"] == 2
    assert f"Put together from those runs' results by `python -m reports zoo --no-run --merge {tmp_path / 'other.json'}" in md
    merge = f"python -m reports zoo --no-run --merge {tmp_path / 'other.json'} -o {tmp_path / 'ZOO.md'}"
    assert again["assembled"] == f"{merge}; then {merge}"  # every merge kept, in order, not only the last


# ----------------------------------------------------------------- over the bar: rounding or off (the float64 runs)

SOURCE_OWN = 4.6e-5  # Keras ResNet101's own float32 error, measured (its torch port's: 1.8e-4; float64 apart: 2.1e-13)


def _over(rel=1.5e-4, rel64=2.1e-13, own32=1.8e-4, **kw):
    return _port(rel=rel, rel64=rel64, own32=own32, float64="saved", **kw)


def test_over_the_bar_is_rounding_only_when_float64_agrees_and_the_own_errors_cover_it():
    st = zoo_render.port_status
    assert st(_over(), SOURCE_OWN) == "rounding"
    assert st(_over(rel64=1e-6), SOURCE_OWN) == "off"  # planted: float64 1e-6 apart is a port's error, not rounding
    assert st(_over(rel=SOURCE_OWN + 1.8e-4 + 1e-6), SOURCE_OWN) == "off"  # beyond the two own errors together
    assert st(_over(rel=3e-4, own32=1e-4), SOURCE_OWN) == "off"
    assert st(_over(rel=SOURCE_OWN + 1.8e-4), SOURCE_OWN) == "rounding"  # at the sum itself
    assert st(_over(rel64=zoo_render.BAR64), SOURCE_OWN) == "rounding"
    assert st(_over(rel64=zoo_render.BAR64 * 1.01), SOURCE_OWN) == "off"
    assert st(_over(), None) == "off"  # no float64 source (ONNX): not explained
    assert st(_over(rel64=None), SOURCE_OWN) == "off"
    assert st(_over(own32=None), SOURCE_OWN) == "off"  # the port's own float32 error is measured, never assumed
    assert st(_port(rel=1.5e-4), SOURCE_OWN) == "off"  # a result from before the float64 runs
    assert st(_over(rel=zoo_render.BAR, rel64=1e-3), SOURCE_OWN) == "agreed"  # under the bar as before
    # keras/InceptionV3 -> torch as measured: the plain sum falls 5.5e-12 short, the sum in rel's units does not
    s, p, r64, rel = 3.984468343922485e-05, 4.52707742337969e-05, 3.43267181898075e-14, 8.51154631789195e-05
    assert rel > s + p and st(_over(rel=rel, rel64=r64, own32=p), s) == "rounding"
    assert zoo_render.own_sum(s, p, r64) == pytest.approx(s + p, rel=1e-4)
    assert st(_over(rel=(s + p) * 1.001, rel64=r64, own32=p), s) == "off"  # the conversion is no blanket slack


@pytest.fixture
def over():
    """keras/ResNet101: torch rounding, ONNX off (a result from before ONNX's float64 run), Flax off (float64 1e-6
    apart); keras/ResNet50: every port agreed or rounding; onnx/resnet50: over the bar with no float64 source."""
    return {"runs": [_run()], "models": {
        "keras/ResNet101": _model("keras/ResNet101", {
            "torch": _over(), "onnx": _port(rel=1.3e-4, float64="ONNX Runtime's CPU Conv is float32 only"),
            "flax": _over(rel=1.4e-4, rel64=1e-6)}, None),
        "keras/ResNet50": _model("keras/ResNet50", {
            "torch": _port(rel=1e-5, rel64=1e-14, own32=2e-5, float64="saved"), "onnx": _port(rel=1.9e-5),
            "flax": _over(rel=3e-5, rel64=3e-14, own32=1e-5)}, None),
        "onnx/resnet50": _model("onnx/resnet50", {
            "torch": _over(rel=2.3e-5, rel64=None, own32=2e-5), "keras": _port(rel=1e-6), "flax": _port(rel=1e-6)},
            None),
    }}  # fmt: skip


def test_the_report_shows_rounding_states_the_rule_with_its_numbers_and_counts_it(over):
    over["models"]["keras/ResNet101"]["prepare"]["own_float32_error"] = SOURCE_OWN
    over["models"]["keras/ResNet50"]["prepare"]["own_float32_error"] = 2.9e-5
    md = zoo_render.render(over)
    row = next(line for line in md.splitlines() if line.startswith("| `keras/ResNet101 *`"))
    assert "| 1.5e-04 ≈ | source | **1.3e-04 off** | **1.4e-04 off** |" in row and "| 4.6e-05 |" in row
    assert "within 1e-10" in md and "at most the source's own float32 error plus the port's own" in md
    assert ("keras/ResNet101 → torch: 1.5e-04 apart in float32, 2.1e-13 in float64; the source's own float32 error "
            "4.6e-05, the port's 1.8e-04") in md  # the measured numbers, the largest rounding case
    f64 = md.split("## Over the bar", 1)[1].split("## Reasons", 1)[0]
    assert "| `keras/ResNet101` | torch | 1.5e-04 | 2.1e-13 | 4.6e-05 | 1.8e-04 | 2.3e-04 | rounding ≈ |" in f64
    assert "| `keras/ResNet101` | ONNX | 1.3e-04 | not measured | 4.6e-05 | not measured | - | **off** |" in f64
    assert "| `keras/ResNet101` | Flax | 1.4e-04 | 1.0e-06 | 4.6e-05 | 1.8e-04 | 2.3e-04 | **off** |" in f64
    assert "| `onnx/resnet50` | torch | 2.3e-05 | not measured | not measured | 2.0e-05 | - | **off** |" in f64
    assert "keras/ResNet50` | torch" not in f64  # under the bar: not listed
    assert ("4 ports ran in float64 beside a float64 source. Over the bar, where the rule reads it, the largest float64 "
            "difference from the source is 1.0e-06 (keras/ResNet101 → Flax). Under the bar, where no rule reads it, "
            "the largest float64 difference from the source is 1.0e-14 (keras/ResNet50 → torch).") in f64
    assert "| keras.applications | torch | 2 | 1 | 1 | 0 | 0 | 0 | 0 | 0 |" in md
    assert "| keras.applications | Flax | 2 | 0 | 1 | 1 | 0 | 0 | 0 | 0 |" in md
    assert "| ONNX light models | torch | 1 | 0 | 0 | 1 | 0 | 0 | 0 | 0 |" in md
    readme = zoo_render.readme_table(over)
    assert "| `keras/ResNet101 *` | ≈ | source | off | off | not run |" in readme
    assert "| `keras/ResNet50` | ✓ | source | ✓ | ≈ | not run |" in readme
    assert "0 of 3 zoo models port to every other framework and agree" in readme
    assert "; 1 more port to every other framework and agree within it or by float32 rounding alone (≈)" in readme
    assert "≈: over the bar in float32, but run in float64 the port agrees with the source run in float64 within " \
           "1e-10" in readme
    assert zoo_render.summary_line(over["models"]["keras/ResNet101"]).startswith("torch rounding, onnx off, flax off")


def test_a_port_is_compared_in_float64_where_both_sides_ran_in_it():
    g = np.random.default_rng(3)
    want64 = g.standard_normal((3, 5))
    y64 = want64 + 1e-14
    want, y = want64.astype(np.float32), (want64 + 3e-5).astype(np.float32)
    got = zoo.compare(y, want, y64, want64)
    assert got["rel"] == pytest.approx(zoo.rel_error(y, want)) and got["rel"] > 1e-6
    assert got["rel64"] == pytest.approx(1e-14 / np.abs(want64).max(), rel=1e-3)
    assert got["own32"] == pytest.approx(zoo.rel_error(y, y64)) and got["own32"] > 1e-6
    assert zoo.compare(y, want, y64, None) == {"rel": got["rel"], "rel64": None, "own32": got["own32"]}
    assert zoo.compare(y, want, None, want64) == {"rel": got["rel"], "rel64": None, "own32": None}
