"""Shared fixtures of the verification suite: implementations load lazily and skip with the reason."""

from __future__ import annotations

import pytest

from impls import BackendUnavailable, backend


def load(name: str):
    """The implementation `name`, or a skip that says why it cannot run here."""
    try:
        return backend(name)
    except BackendUnavailable as e:
        pytest.skip(str(e))
