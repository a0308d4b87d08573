"""The second core: some voices' sections computed in a worker process while this one computes the others.

    job = Worker.start(model, batch, ("jax", "flax"), one_pass)    # an exec'd interpreter running worker.main(DIR)
    ...                                                             # this process's voices meanwhile
    entries, seconds = job.result()                                 # {voice: its entry}, {voice: {section: s}}

The voices are independent: each compares its own build with the same NumPy float64 reference. The worker is a
fresh interpreter (exec'd, never forked: JAX deadlocks under fork), given the model description as its .json and
.npz (impls/model/store.py) and the batch; it draws the same seeded inputs, runs the same reference and the same
`voice_section`, and hands back JSON, in which a float keeps every bit (repr), so the certificate is the same byte
for byte as one computed in one process, apart from its times (tests/test_certify_worker.py). Its frameworks run
with this process's thread count. Should the worker fail to start or die, its voices are computed here after all,
and the certificate says nothing different.

Which voices go to the worker (`split`): JAX and Flax, where both cores exist. They compile (XLA) and are the
slowest voices of a deep CNN's certificate (measured on torchvision resnet18, 3,3,64,64: 40 of 72 s of checks), and
they are the only voices that import JAX, so neither process starts every framework.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from impls import frameworks
from impls.model import store
from impls.model.description import Model

WORKER_VOICES = ("jax", "flax")
_RUN = "import sys; from nnparity.certify.worker import main; sys.exit(main(sys.argv[1]))"
"""The worker's command (`python -c`): `python -m nnparity.certify.worker` imports this module twice, once as the
package's and once as __main__, and runpy warns so on the user's terminal."""


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def split(voices: tuple[str, ...], jobs: int) -> tuple[str, ...]:
    """The voices the worker computes: JAX's, where a second process may run."""
    return tuple(v for v in voices if v in WORKER_VOICES) if jobs > 1 else ()


def _plain(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON-able")


def resident_gib(pid: int | str) -> float:
    """A process's resident memory now, in GiB (/proc/PID/statm); 0.0 where it cannot be read (gone, not Linux)."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (OSError, ValueError, IndexError):
        return 0.0


class Worker:
    SAMPLE_S = 0.2  # how often the two processes' resident memory is read together

    def __init__(self, proc: subprocess.Popen, folder: tempfile.TemporaryDirectory, voices: tuple[str, ...]) -> None:
        self.proc, self.folder, self.voices = proc, folder, voices
        self.peak_together_gib = 0.0  # getrusage gives each process's own peak, not the machine's at one moment
        self._done = threading.Event()
        self._watch = threading.Thread(target=self._sample, daemon=True)
        self._watch.start()

    def _sample(self) -> None:
        while not self._done.is_set() and self.proc.poll() is None:
            now = resident_gib("self") + resident_gib(self.proc.pid)
            self.peak_together_gib = max(self.peak_together_gib, now)
            self._done.wait(self.SAMPLE_S)

    @classmethod
    def start(cls, model: Model, batch: int, voices: tuple[str, ...], one_pass: bool) -> Worker | None:
        """The worker, started; None where it cannot be (its voices are then computed here)."""
        folder = tempfile.TemporaryDirectory(prefix="nnparity-worker-")
        base = Path(folder.name)
        try:
            store.save(model, base / "model")
            (base / "request.json").write_text(json.dumps({"voices": list(voices), "batch": batch, "one_pass": one_pass,
                                                           "threads": frameworks.threads()}))  # fmt: skip
            proc = subprocess.Popen([sys.executable, "-c", _RUN, str(base)],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)  # fmt: skip
        except (OSError, ValueError):
            folder.cleanup()
            return None
        return cls(proc, folder, voices)

    def result(self) -> tuple[dict[str, dict], dict[str, dict[str, float]]] | None:
        """({voice: entry}, {voice: {section: seconds}}), or None where the worker failed."""
        try:
            code = self.proc.wait()
            self._done.set()
            out = Path(self.folder.name) / "result.json"
            if code != 0 or not out.exists():
                return None
            got = json.loads(out.read_text())
            return got["entries"], got["profile"]
        finally:
            self.folder.cleanup()

    def stop(self) -> None:
        self._done.set()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.folder.cleanup()


def _exit_with(parent: int, every_s: float = 1.0) -> None:
    """Exit this worker once its parent is gone (killed by a signal Python cannot catch, or by SIGTERM, whose
    default skips the parent's `finally`): an orphan would compute for minutes and hold gigabytes for no one."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(3)

    threading.Thread(target=watch, daemon=True).start()


def main(folder: str) -> int:
    _exit_with(os.getppid())
    base = Path(folder)
    request = json.loads((base / "request.json").read_text())
    if request["threads"] is not None:
        frameworks.set_threads(request["threads"])
    from .about import release_memory, worth_releasing
    from .checks import Profile
    from .inputs import Reference, defined_dy, inputs
    from .per_voice import voice_section

    model = store.load(base / "model")
    data = inputs(model, request["batch"])
    ref = Reference.of(model, data["x"])
    data["dy"] = defined_dy(ref, data["dy"])
    profile = Profile()

    def say(message: str) -> None:  # as the command's own progress lines: on a terminal only
        if sys.stderr.isatty():
            print(f"nnparity [worker] {message}", file=sys.stderr, flush=True)

    entries, large = {}, worth_releasing(model, ref.outs)
    for voice in request["voices"]:
        entries[voice], _ = voice_section(voice, model, ref, data["dy"], profile, say, request["one_pass"])
        if large:
            release_memory()
    tmp = base / "result.json.part"
    tmp.write_text(json.dumps({"entries": entries, "profile": profile.seconds}, default=_plain))
    tmp.replace(base / "result.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
