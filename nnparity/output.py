"""Writing a command's output whole or not at all.

Everything is written into a temporary sibling of the destination (same folder, so the final rename stays on one
file system) and renamed into place only once complete; on any failure the temporary is removed and the
destination is as it was. An existing destination is refused unless the caller allows replacing it (--force).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from impls.importers import BadInput


def refuse_existing(out: Path, force: bool) -> None:
    """BadInput naming `out` when it exists and `force` is off."""
    if (out.exists() or out.is_symlink()) and not force:
        raise BadInput(f"{out}: already exists; give --force to replace it")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _sibling(out: Path, tag: str) -> Path:
    return out.parent / f".{out.name}.nnparity-{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@contextmanager
def staged(out: Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling path of `out` (not yet existing: create a file or a folder there). When the block
    ends normally it replaces `out`; when it raises, it is removed and `out` is untouched."""
    out = Path(out)
    refuse_existing(out, force)
    if not out.parent.is_dir():
        raise BadInput(f"{out}: its folder {out.parent} does not exist")
    tmp = _sibling(out, "tmp")
    try:
        yield tmp
        if not (tmp.exists() or tmp.is_symlink()):
            raise RuntimeError(f"{out}: nothing was written")
        if out.exists() or out.is_symlink():  # --force: the old one goes aside, then away once the new is in place
            old = _sibling(out, "old")
            os.replace(out, old)
            try:
                os.replace(tmp, out)
            except BaseException:
                os.replace(old, out)
                raise
            _remove(old)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists() or tmp.is_symlink():
            _remove(tmp)


def _write(path: Path, content: str | bytes) -> None:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


def write_files(folder: Path, files: dict[str, str | bytes]) -> list[Path]:
    """Write files {name: text or bytes} into `folder`, all or none: a new folder is staged whole; into an existing
    folder (a previous certificate) each file is staged beside it and replaced only after all were written."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"{folder}: exists and is not a folder")
    if not folder.exists():
        with staged(folder) as tmp:
            tmp.mkdir()
            for name, text in files.items():
                _write(tmp / name, text)
        return [folder / name for name in files]
    tmps = {name: _sibling(folder / name, "tmp") for name in files}
    try:
        for name, text in files.items():
            _write(tmps[name], text)
        for name, tmp in tmps.items():
            os.replace(tmp, folder / name)
    finally:
        for tmp in tmps.values():
            if tmp.exists():
                tmp.unlink()
    return [folder / name for name in files]


__all__ = ["refuse_existing", "staged", "write_files"]
