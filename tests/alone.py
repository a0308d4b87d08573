"""A script run where nnparity cannot help: how the tests load a port with its own framework alone.

    got = run_alone(LOADER, folder)     # `python -I -c LOADER` in folder, PYTHONPATH dropped: {name: what it printed}

The script prints one JSON object as its last line, holding "nnparity loaded": the nnparity modules it found in
sys.modules (each LOADER blocks their import). run_alone fails the test if the script fails or loaded any, and returns
the rest of the object.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}


def run_alone(script: str, folder: Path | str, timeout: int = 600) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | ENV
    r = subprocess.run([sys.executable, "-I", "-c", script], cwd=folder, env=env, capture_output=True, text=True,
                       timeout=timeout, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got.pop("nnparity loaded") == [], "the port's loader imported nnparity"
    return got
