"""One worker process of a run timed in several (bench/processes.py starts it: exec, never fork).

    python -m bench.worker SPEC.json OUT.json

SPEC says the profile, devices, the selected row and ceiling ids in the parent's order, the timing (this
worker's share), the run policies to apply (threads, pin, malloc) and what varies in this worker: its
shuffle seed and the size of a dummy allocation held from before any input is built (PYTHONHASHSEED and the
padding environment variable NNPARITY_PAD are in its environment already). OUT gets every row's outcome
(extra_info, per-block per-call times, loops; or the skip reason or the error), the groups' machine usage,
and the seconds spent inside timed blocks.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path


def _plain(o):
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def main(argv: list[str]) -> int:
    t0 = time.monotonic()
    spec = json.loads(Path(argv[0]).read_text())
    held = bytearray(int(spec["alloc_bytes"]))  # before any input is built; touched, so it is resident
    if held:
        held[:: 4096] = b"\x01" * len(range(0, len(held), 4096))

    from impls import frameworks

    from . import cases, groups, harness, machine
    from .blocks import Timing

    frameworks.set_threads(spec["threads"])
    frameworks.use_jax_compile_cache(Path(spec["root"]) / ".cache" / "jax")
    pin = machine.pin(spec["pin_cpu"]) if spec["pin_cpu"] is not None else {"policy": "unpinned"}
    malloc = machine.steady_malloc() if spec["malloc"] == "steady" else {"policy": "default"}
    opts = harness.Options(spec["profile"], Timing(**spec["timing"]), spec["cuda_events"], spec["blocks"], True,
                           spec["cuda_wait"], frameworks.threads())  # fmt: skip
    devices = tuple(spec["devices"])
    known = {it.id: it for it in cases.rows(spec["profile"], devices) + cases.ceilings(spec["profile"], devices)}
    missing = [i for i in spec["ids"] if i not in known]
    if missing:
        raise SystemExit(f"bench.worker: unknown row ids {missing[:5]} for profile {spec['profile']!r}")
    items = [known[i] for i in spec["ids"]]
    session = groups.Session(opts, spec["deadline"], t0, shuffle=int(spec["shuffle_seed"]))
    session.register(items)
    out = {}
    for it in items:
        o = session.outcome(it)
        rec = {"info": o.info, "times": o.times, "loops": o.loops, "skip": o.skip, "error": None}
        if o.error is not None:
            rec["error"] = {"type": type(o.error).__name__, "message": str(o.error),
                            "traceback": "".join(traceback.format_exception(o.error))[-4000:]}  # fmt: skip
        out[it.id] = rec
    result = {"outcomes": out, "groups": session.groups, "timed_s": session.timed_s, "pin": pin, "malloc": malloc,
              "pid": os.getpid(), "hashseed": os.environ.get("PYTHONHASHSEED"),
              "pad": len(os.environ.get("NNPARITY_PAD", "")), "alloc_bytes": len(held),
              "wall_s": time.monotonic() - t0}  # fmt: skip
    Path(argv[1]).write_text(json.dumps(result, default=_plain))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
