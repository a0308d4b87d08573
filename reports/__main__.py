"""Command line of the report builder.

    python -m reports RUN.json [MORE.json ...] [--verify RESULTS.xml] -o reports/NAME.md
    python -m reports audit [args]       -> reports.audit:main(args)
    python -m reports training [args]    -> reports.training:main(args)
    python -m reports porting [args]     -> reports.porting:main(args)
    python -m reports zoo [args]         -> reports.zoo:main(args)

Exit status: 0 written; 2 bad input or usage (the message names the file and the problem, and no
report is written); 1 an unexpected failure.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = {"audit": "the seed audit (reports/audit.py)", "training": "training curves (reports/training.py)",
               "porting": "what the ONNX exporters emit (reports/porting.py)",
               "zoo": "the model zoo ported and certified (reports/zoo.py)"}


def _subcommand(name: str, args: list[str]) -> int:
    try:
        mod = importlib.import_module(f"reports.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"reports.{name}":
            raise
        print(f"error: `python -m reports {name}` needs reports/{name}.py ({SUBCOMMANDS[name]}), "
              "which is not in this checkout", file=sys.stderr)  # fmt: skip
        return 2
    if not callable(getattr(mod, "main", None)):
        print(f"error: reports/{name}.py has no main(args)", file=sys.stderr)
        return 2
    rc = mod.main(args)
    return int(rc or 0)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m reports",
        description="Markdown report from pytest-benchmark JSON (and pytest junit XML). "
        f"Subcommands: {', '.join(SUBCOMMANDS)} (python -m reports audit --help).",
    )
    p.add_argument("runs", nargs="+", metavar="RUN.json", help="pytest-benchmark JSON files (several machines merge)")
    p.add_argument("--verify", action="append", default=[], metavar="RESULTS.xml",
                   help="pytest --junitxml output of the verification suite (repeatable)")  # fmt: skip
    p.add_argument("-o", "--output", required=True, metavar="NAME.md", help="the Markdown to write; PNGs go beside it")
    p.add_argument("--title", default="nnparity benchmark report")
    p.add_argument("--no-plots", action="store_true", help="skip the scaling PNGs")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        return _subcommand(argv[0], argv[1:])
    args = parser().parse_args(argv)
    from .build import build  # after parsing, so --help stays fast
    from .load import ReportInputError

    try:
        out = build(args.runs, args.verify, args.output, argv, title=args.title, draw=not args.no_plots)
    except ReportInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
