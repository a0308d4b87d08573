"""Markdown helpers: escaping of names taken from JSON/XML, tables through pandas + tabulate, and an
atomic write (temporary file in the same directory, then os.replace), so a failed build leaves no
half-written report behind, and the written file has the permissions a plain write would give it."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

_ESCAPES = [("\\", "\\\\"), ("&", "&amp;"), ("<", "&lt;"), ("|", "\\|"), ("`", "\\`")]


def escape(value: object) -> str:
    """Text that is safe inside a Markdown table cell or heading: no raw `|`, newline, backtick, `<`."""
    s = "" if value is None else str(value)
    s = re.sub(r"[\r\n\t\v\f]+", " ", s)
    for a, b in _ESCAPES:
        s = s.replace(a, b)
    return s


def table(df: pd.DataFrame, escape_cells: bool = False) -> str:
    """A pipe table. Cells must already be strings; numbers are never re-parsed by tabulate.
    With escape_cells every cell and header goes through `escape` (use it for raw names)."""
    if df.empty:
        return "_(no rows)_\n"
    if escape_cells:
        df = df.map(escape)
        df.columns = [escape(c) for c in df.columns]
    return df.to_markdown(index=False, disable_numparse=True) + "\n"


def code_block(text: str) -> str:
    """A fenced block whose fence is longer than any backtick run inside, so `text` cannot close it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}\n"


def slug(*parts: object) -> str:
    """A file-name-safe token from names in the JSON (nothing can escape the output directory)."""
    s = "-".join(str(p) for p in parts if p not in (None, ""))
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", s).strip("._") or "x"


def _umask() -> int:
    """The process's umask (os.umask can only be read by setting it: set and restore at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode(path: Path) -> int:
    """The permissions a plain write would leave `path` with: an existing file keeps its own, a new one gets
    0o666 less the umask (mkstemp's temporary file is 0o600, which would make reports private)."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def atomic_write(path: str | os.PathLike, write: Callable[[str], None] | str | bytes) -> None:
    """Write `path` all at once: `write` is the content or a callable given a temporary path in the
    same directory. The temporary file is removed on any failure; `path` is replaced only on success,
    with the permissions a plain write would have given it (file_mode)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        if callable(write):
            write(tmp)
        else:
            data = write.encode() if isinstance(write, str) else write
            with open(tmp, "wb") as f:
                f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
