"""The `nnparity` command line: `certify` and `port` (also `python -m nnparity`).

Exit status: 0 when every check passes (certify) or the port was written; 1 when a check fails; 2 on bad input,
which is one line on stderr, `nnparity: <file>: <problem>`, with nothing written. Progress goes to stderr when it
is a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

EXAMPLES = """\
examples:
  nnparity certify mnist_convnet.keras                     # -> ./certificate-mnist_convnet/
  nnparity certify net.py:model --input-shape 3,100,64 -o cert --no-bench
  nnparity port mnist_convnet.keras --to torch -o mnist_torch
  nnparity port net.py:model --input-shape 3,100,64 --to onnx -o net.onnx
"""

MODEL_HELP = ("the model: PATH.keras (a Keras 3 file, loaded in safe mode), PATH.onnx, PATH.py:NAME (NAME a "
              "torch.nn.Module or keras.Model, or a zero-argument callable returning one) or PATH.json (an nnparity "
              "model description with its .npz, impls/model/store.py)")  # fmt: skip
SHAPE_HELP = ("the input's shape as the source takes it, comma-separated, batch first (e.g. 3,100,64; a torch CNN's "
              "is NCHW, 3,1,28,28); needed where the model does not carry its shape (a torch module). Integer inputs "
              "keep the source's dtype")  # fmt: skip


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nnparity", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        description="Certify a Keras, PyTorch or ONNX model against a float64 NumPy reference in every framework "
                    "voice (forward, each layer, gradients, a training step, speed), or port it to another framework.")  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True, metavar="{certify,port}")
    c = sub.add_parser(
        "certify", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="check the model in every voice and write DIR/certificate.md, DIR/certificate.json and DIR/certificate.png",
        description="Check MODEL in every voice (NumPy, torch, TensorFlow and JAX from primitives; torch.nn, Keras, "
                    "Flax and ONNX Runtime as ports) against the NumPy float64 reference: the whole forward in float32 "
                    "and float64, every layer isolated and accumulated (the first diverging layer), gradients, a GRU's "
                    "non-zero initial state, one Adam step per framework, the source model itself, and a paired speed "
                    "ranking. Exit 0 when every check passes, 1 when one fails, 2 on bad input.",
        epilog="example:\n  nnparity certify mnist_convnet.keras -o cert    # cert/certificate.md, .json and .png")  # fmt: skip
    c.add_argument("model", help=MODEL_HELP)
    c.add_argument("--input-shape", help=SHAPE_HELP)
    c.add_argument("-o", "--output", type=Path, default=None,
                   help="the folder for certificate.md, certificate.json and certificate.png (default: "
                        "./certificate-<model stem>); an existing one's three files are replaced")  # fmt: skip
    c.add_argument("--no-bench", action="store_true", help="skip the speed ranking")
    c.add_argument("--profile", action="store_true",
                   help="print where the time went (seconds per voice and section) and the peak memory to stderr")
    c.add_argument("--jobs", type=_jobs, default=None, metavar="N",
                   help="processes for the checks: 2 or more computes JAX's voices (jax, flax) in a worker process "
                        "beside the others; 1 computes everything in this one (default: 2 where the machine has "
                        "two cores; one for a model whose float64 weights and layer outputs reach 512 MiB, and the "
                        "certificate says why). The certificate is otherwise the same either way, apart from its times")
    q = sub.add_parser(
        "port", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="write the model as a torch, Keras, ONNX or Flax model that loads without nnparity",
        description="Write MODEL for another framework at exactly OUT: torch -> a folder with model.py (`from model "
                    "import load; m = load()`) and its weights; keras -> OUT.keras (keras.saving.load_model); onnx -> "
                    "OUT.onnx (onnxruntime); flax -> a folder whose model.py has load() -> (module, variables). The "
                    "port takes the source's inputs and returns its outputs in the source's layouts; --native-layout "
                    "uses the target's own instead.",
        epilog="example:\n  nnparity port mnist_convnet.keras --to onnx -o mnist.onnx")  # fmt: skip
    q.add_argument("model", help=MODEL_HELP)
    q.add_argument("--to", required=True, choices=("torch", "keras", "onnx", "flax"), help="the target framework")
    q.add_argument("-o", "--output", required=True, type=Path, help="what to write (.keras for keras, .onnx for onnx)")
    q.add_argument("--input-shape", help=SHAPE_HELP)
    q.add_argument("--native-layout", action="store_true",
                   help="take and return the target's own layout (NCHW for torch and ONNX, time-major ONNX GRU input)")
    q.add_argument("--force", action="store_true", help="replace an existing OUT")
    return p


def progress(enabled: bool) -> Callable[[str], None]:
    t0 = time.monotonic()

    def say(message: str) -> None:
        if enabled:
            print(f"nnparity [{time.monotonic() - t0:5.1f} s] {message}", file=sys.stderr, flush=True)

    return say


def _bad_input_types() -> tuple[type[BaseException], ...]:
    from impls.contract.spec import ShapeError
    from impls.importers import BadInput, UnsupportedLayer
    from impls.model.description import ModelError

    return (BadInput, UnsupportedLayer, ModelError, ShapeError, FileNotFoundError)


def one_line(names: list[str], e: BaseException) -> str:
    """`nnparity: <file>: <problem>` on one line: the message as it is where it starts with one of `names` (the
    model, its file, OUT), else prefixed with the first."""
    text = "; ".join(part.strip() for part in str(e).splitlines() if part.strip()) or type(e).__name__
    if isinstance(e, FileNotFoundError) and e.filename:
        text = f"{e.filename}: {e.strerror or 'no such file'}"
    named = any(n and text.startswith(n) for n in names)
    return f"nnparity: {text if named else f'{names[0]}: {text}'}"


def _jobs(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"--jobs must be a whole number of at least 1, not {text!r}")
    return n


def _certify(args: argparse.Namespace, argv: list[str], say: Callable[[str], None]) -> int:
    from impls import frameworks
    from impls.importers import locate

    from . import timing

    locate(args.model)  # a missing file is said before any framework starts
    with contextlib.ExitStack() as limit:
        if args.no_bench:  # no timing: TensorFlow may give freed memory back (a large model's voices stack otherwise)
            frameworks.prefer_system_allocator()
        else:  # one thread per framework while timing: set before any framework starts
            refused = limit.enter_context(frameworks.thread_limit(timing.THREADS))
            try:
                frameworks.load("tensorflow")  # now, before an importer's Keras starts TensorFlow's pools
            except frameworks.BackendUnavailable:
                pass
            if refused:  # TensorFlow already started in this process: timing.py reports its real count
                say(f"threads: {refused}")
        return _certify_limited(args, argv, say)


def _certify_limited(args: argparse.Namespace, argv: list[str], say: Callable[[str], None]) -> int:
    from impls.importers import parse_input_shape

    from . import certificate, certify, source

    shape = parse_input_shape(args.input_shape)
    out = args.output if args.output is not None else Path.cwd() / f"certificate-{source.stem(args.model)}"
    if out.exists() and not out.is_dir():
        from impls.importers import BadInput

        raise BadInput(f"{out}: exists and is not a folder")
    say(f"importing {args.model}")
    model, imported = source.load(args.model, shape)
    batch, note = source.certificate_batch(shape)
    settings = certify.Settings(batch=batch, bench=not args.no_bench, command=["nnparity", *argv], progress=say,
                                spec=args.model, batch_note=note,
                                **({"jobs": args.jobs} if args.jobs is not None else {}))  # fmt: skip
    cert = certify.certify(model, imported, settings)
    certificate.write(cert, out)
    if args.profile:
        print(certify.profile_table(cert), file=sys.stderr)
    fd = cert["first_diverging_layer"]
    print(f"{out}/certificate.md: {cert['verdict'].upper()}"
          + (f"; first diverging layer {fd!r}" if fd else "")
          + (f"; {len(cert['failures'])} checks failed" if cert["failures"] else ""))  # fmt: skip
    return 0 if cert["verdict"] == "pass" else 1


def _port(args: argparse.Namespace, say: Callable[[str], None]) -> int:
    from impls.importers import parse_input_shape

    from . import port

    try:
        say(f"porting {args.model} to {args.to}")
        written = port.port(args.model, args.to, args.output, parse_input_shape(args.input_shape), args.native_layout,
                            args.force)  # fmt: skip
    except port.PortUnavailable as e:
        print(f"nnparity: {args.output}: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} ({', '.join(str(p) for p in written)})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns its exit status (argparse's own errors included)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2)
        return int(e.code or 0)
    say = progress(sys.stderr.isatty())
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # tf.function's retracing advice is not the user's business
    try:
        if args.command == "certify":
            return _certify(args, argv, say)
        return _port(args, say)
    except _bad_input_types() as e:
        model = str(args.model)
        file = model.rpartition(":")[0] if model.count(":") == 1 and not Path(model).exists() else model
        print(one_line([model, file, str(args.output or "")], e), file=sys.stderr)
        return 2


__all__ = ["main", "one_line", "parser"]
