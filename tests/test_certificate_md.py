"""certificate.md for a reader, certificate.json whole, certificate.png beside them (issue 26).

- Every key of the certificate as the code before issue 26 wrote it is still in certificate.json:
  tests/data/certificate-keys.json holds the key paths of two certificates made by that code (commit f55a23c,
  `python -m tests.test_certificate_md` there writes the file), and the same certificates made now must hold them all.
- A failure planted in layer 40 of a 60-layer model is on the first screen (the lines above the first `##`), with its
  error; the per-layer tables keep it, the last layer and a bounded number of rows in view, every row in <details>.
- Notes that repeat across layers are stated once with the layers; sections that do not apply are left out.
- certificate.png is written with the other two and draws one line per voice and dtype that computed.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path

import pytest

from impls.importers import Imported
from impls.model import voices
from impls.model.compose import reference_forward, reference_outputs
from impls.model.seeded import chain
from nnparity import certificate, certify, timing
from tests.test_certify import small_gru

# the rest of nnparity's certificate (issue 26) is imported inside the tests: the fixture's generator below runs at the
# commit before it, where certificate is one module and plot does not exist

KEYS = Path(__file__).parent / "data" / "certificate-keys.json"
PLANTED = 40


def key_paths(node, where: str = "") -> set[str]:
    """Every key path of a JSON document, list positions as []: {"voices.torch.layers.float32[].isolated.error", ...}."""
    out = set()
    if isinstance(node, dict):
        for k, v in node.items():
            p = f"{where}.{k}" if where else str(k)
            out |= {p} | key_paths(v, p)
    elif isinstance(node, list):
        for v in node:
            out |= key_paths(v, where + "[]")
    return out


def resnet_like(blocks: int = 2):
    """conv, BatchNorm, relu and residual adds: a graph with notes that repeat per BatchNorm in torch.nn."""
    specs = [("conv2d", "stem", {"filters": 3, "kernel_size": [3, 3], "padding": "same"}), ("batch_norm", "bn0", {}),
             ("activation", "relu0", {"activation": "relu"})]  # fmt: skip
    prev = "relu0"
    for b in range(blocks):
        specs += [(("conv2d", f"b{b}c", {"filters": 3, "kernel_size": [3, 3], "padding": "same"})), ("batch_norm", f"b{b}bn", {}),
                  ("add", f"b{b}add", {}, (f"b{b}bn", prev)), ("activation", f"b{b}relu", {"activation": "relu"})]  # fmt: skip
        prev = f"b{b}relu"
    return chain("resnet_like", (5, 5, 3), [*specs, ("global_avg_pool", "gap", {}), ("dense", "fc", {"units": 4})])


def own(model) -> Imported:
    """The model as a user's own loaded model that exposes its layers (the reference itself)."""
    m = model.astype("float64")
    return Imported(model, "keras", "own.keras", lambda x: reference_forward(m, x.astype("float64")).astype("float32"),
                    layer_outputs=lambda x: reference_outputs(m, x.astype("float64")),
                    layer_call=lambda j, x: reference_forward(m.sub(j), x.astype("float64")))  # fmt: skip


def keyed_certificates() -> dict[str, dict]:
    """The two certificates whose key paths the fixture holds: a GRU model with its source and the speed ranking
    (timed briefly), and a BatchNorm graph (training-mode state, torch.nn's parametrization notes)."""
    real = timing.rank
    timing.rank = functools.partial(real, timing=timing.TIMING.__class__(**{
        **timing.TIMING.__dict__, "group_time": 0.2, "min_blocks": 4, "max_blocks": 5, "slot": 0.005, "epochs": 2}))
    try:
        gru = certify.certify(small_gru(), own(small_gru()), certify.Settings(voices=("numpy", "torch", "torch_nn", "keras")))
    finally:
        timing.rank = real
    bn = certify.certify(resnet_like(), None, certify.Settings(bench=False, voices=("numpy", "torch_nn")))
    return {"small_gru": json.loads(certificate.to_json(gru)), "resnet_like": json.loads(certificate.to_json(bn))}


def test_every_key_of_the_certificate_before_issue_26_is_still_in_certificate_json():
    before = json.loads(KEYS.read_text())
    now = {name: key_paths(cert) for name, cert in keyed_certificates().items()}
    for name, keys in before["certificates"].items():
        assert not set(keys) - now[name], (name, sorted(set(keys) - now[name]))


@pytest.fixture(scope="module")
def planted():
    return planted_certificate()


def planted_certificate() -> dict:
    """A 60-layer chain (dense and tanh, alternately), torch's build of layer 40 (a dense) 1% off. Layer 40 alone has
    a sigmoid: a distinct structure, which the isolated check builds anew (voices.LayerBuilds rebinds a structure
    built before to each layer's weights, which would take the planted fault away)."""
    model = chain("deep60", (6,), [("dense", f"d{i}", {"units": 6, **({"activation": "sigmoid"} if i == PLANTED else {})})
                                   if i % 2 == 0 else ("activation", f"t{i}", {"activation": "tanh"}) for i in range(60)])  # fmt: skip
    real = voices.build

    def build(voice, m, dtype="float32", device=None):
        if voice == "torch" and any(la.name == f"d{PLANTED}" for la in m.layers):
            i = m.layer_index(f"d{PLANTED}")
            m = m.replace_layer(i, m.layers[i].map(lambda a: a * 1.01))
        return real(voice, m, dtype, device)

    mp = pytest.MonkeyPatch()
    mp.setattr(voices, "build", build)
    try:
        cert = certify.certify(model, None, certify.Settings(bench=False, voices=("numpy", "torch")))
    finally:
        mp.undo()
    return json.loads(certificate.to_json(cert))


def test_a_failure_planted_in_layer_40_of_60_is_on_the_first_screen(planted):
    assert planted["verdict"] == "fail" and planted["first_diverging_layer"] == f"d{PLANTED}"
    md = certificate.to_markdown(planted)
    screen = certificate.first_screen(md)
    assert len(screen) <= certificate.FIRST_SCREEN_LINES, len(screen)
    text = "\n".join(screen)
    assert "**Verdict: FAIL**" in text
    err = planted["voices"]["torch"]["layers"]["float32"][PLANTED]["isolated"]["error"]
    line = next(s for s in screen if s.startswith("**First diverging layer:**"))
    assert f"`d{PLANTED}` (layer {PLANTED}, dense)" in line and f"{err:.2e}" in line and "torch float32" in line
    torch_row = next(s for s in screen if s.startswith("| `torch` |"))
    assert torch_row.count("**✗") >= 2 and f"first over: `d{PLANTED}`" in torch_row
    assert next(s for s in screen if s.startswith("| `numpy` |")).count("✓") == 3


def test_the_per_layer_tables_show_the_rows_that_matter_and_keep_every_row_collapsed(planted):
    from nnparity.certificate import layers

    md = certificate.to_markdown(planted)
    seen = certificate.outside_details(md)
    for d in ("float32", "float64"):
        block = md.split(f"### {d} (bar")[1].split("<details>")[0]
        rows = [r for r in block.splitlines() if re.match(r"\| \d+ \|", r)]
        shown = {int(r.split("|")[1]) for r in rows}
        assert {PLANTED, 59} <= shown and len(rows) <= 3 + layers.GROWTH_ROWS, rows  # 40, 41 (accumulated), growth, last
        assert "first diverging in torch" in next(r for r in rows if r.startswith(f"| {PLANTED} |"))
        assert "the last layer" in next(r for r in rows if r.startswith("| 59 |"))
        full = md.split(f"every layer in {d} (60 rows)</summary>")[1].split("</details>")[0]
        assert len([r for r in full.splitlines() if re.match(r"\| \d+ \|", r)]) == 60
    assert len(seen) < 150 and len(md.splitlines()) > len(seen) + 2 * 60


def test_growth_is_the_ratio_to_the_largest_error_the_layer_reads():
    from nnparity.certificate import layers

    rows = [{"accumulated": {"error": e, "bar": 1, "pass": True}} for e in (1e-7, 4e-7, 2e-7, 8e-7)]
    g = layers.growth(rows, [[-1], [0], [1], [2, 1]], "float32")
    f = layers.GROWTH_FLOOR * 1.1920929e-07
    assert g[0] == pytest.approx((1e-7 + f) / f) and g[1] == pytest.approx((4e-7 + f) / (1e-7 + f))
    assert g[3] == pytest.approx((8e-7 + f) / (4e-7 + f))  # the larger of the two inputs'


def test_notes_that_repeat_across_layers_are_stated_once_with_their_layers():
    from impls.ports.torch_port import normalization
    from nnparity.certificate import cells

    model = resnet_like(3)
    notes = [("torch_nn", n) for n in normalization.notes(model)]
    assert len(notes) >= 8  # one per BatchNorm, twice
    lines = cells.group_notes(notes + [("flax", "images NHWC"), ("torch_nn", "images NCHW")])
    bn = [line for line in lines if "nn.BatchNorm2d with momentum=0.01" in line]
    assert len(bn) == 1 and bn[0].startswith("- `torch_nn`: 4 batch_norm layers (`bn0`, `b0bn`, `b1bn`, `b2bn`): nn.")
    assert "layer 1 'bn0'" not in bn[0]
    assert "- `flax`: images NHWC" in lines and "- `torch_nn`: images NCHW" in lines
    # the torch importer's bare node names, and the same note in two voices: once, naming both
    two = cells.group_notes([("a", "bn1: momentum 0.1"), ("b", "bn1: momentum 0.1"), ("a", "bn2: momentum 0.1")])
    assert two == ["- `a`, `b`: 2 layers (`bn1`, `bn2`): momentum 0.1"]


def test_a_section_that_does_not_apply_is_left_out(planted):
    md = certificate.to_markdown(planted)
    for absent in ("## GRU layers", "## The source model itself", "## Speed", "Refused or not checked"):
        assert absent not in md, absent
    assert "speed ranking: skipped (--no-bench)" in md and "there is no framework model behind it" in md
    # a model with nothing to train: the reason on the first screen, no training section
    quiet = copy.deepcopy(planted)
    quiet["training"] = {**quiet["training"], "not_compared": "the model has no parameters"}
    md = certificate.to_markdown(quiet)
    assert "## One training step" not in md
    assert any("the training step, every voice: the model has no parameters" in s for s in certificate.first_screen(md))


def test_certificate_png_is_written_with_the_others_and_draws_each_voice_and_dtype_that_computed(planted, tmp_path):
    from nnparity import plot

    written = certificate.write(planted, tmp_path / "c")
    assert sorted(p.name for p in written) == sorted(certificate.FILES)
    assert (tmp_path / "c" / "certificate.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def drawn(cert):
        fig = plot.figure(cert)
        got = set()
        for ax, d in zip(fig.axes, plot.DTYPES, strict=True):
            got |= {(line.get_gid().removeprefix(plot.VOICE), d) for line in ax.get_lines()
                    if (line.get_gid() or "").startswith(plot.VOICE)}  # fmt: skip
            assert {line.get_gid() for line in ax.get_lines()} >= {"bar", "first_diverging"}
            assert ax.get_yscale() == "log"
        return got

    assert drawn(planted) == {(v, d) for v in ("numpy", "torch") for d in plot.DTYPES}
    refused = copy.deepcopy(planted)  # a voice that refused float64 computed nothing there: no line
    del refused["voices"]["torch"]["layers"]["float64"]
    refused["voices"]["torch"]["refused"]["float64"] = "declared"
    assert drawn(refused) == {("numpy", "float32"), ("numpy", "float64"), ("torch", "float32")}


if __name__ == "__main__":  # the fixture: `python -m tests.test_certificate_md COMMIT` in a tree of COMMIT
    import sys

    commit = sys.argv[1]
    certs = keyed_certificates()
    KEYS.parent.mkdir(exist_ok=True)
    KEYS.write_text(json.dumps({"made_by": f"python -m tests.test_certificate_md at {commit}",
                                "certificates": {n: sorted(key_paths(c)) for n, c in certs.items()}}, indent=1) + "\n")
    print(f"wrote {KEYS}: {sum(len(key_paths(c)) for c in certs.values())} key paths")
