"""Shared fixtures of the verification suite: implementations load lazily and skip with the reason; the
session writes each bar's headroom (verify/headroom.py) into the junit XML as testsuite properties."""

from __future__ import annotations

import pytest

from impls import BackendUnavailable, backend, frameworks
from verify import headroom


def load(name: str):
    """The implementation `name`, or a skip that says why it cannot run here."""
    try:
        return backend(name)
    except BackendUnavailable as e:
        pytest.skip(str(e))


def load_framework(name: str):
    """The framework `name` itself (torch, tensorflow, keras, onnx) through impls.frameworks, or a skip."""
    try:
        return frameworks.load(name)
    except BackendUnavailable as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session", autouse=True)
def _headroom_into_junit(record_testsuite_property):
    yield
    for name, value in headroom.properties():
        record_testsuite_property(name, value)
