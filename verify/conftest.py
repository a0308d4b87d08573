"""Shared fixtures of the verification suite: implementations load lazily and skip with the reason; the
session writes each bar's headroom (verify/headroom.py) into the junit XML as testsuite properties.

Under pytest-xdist (`pytest verify/ -n auto`) the workers have no junit XML of their own: each hands its headroom
book to the controller (xdist's workeroutput), which merges them and writes the properties itself."""

from __future__ import annotations

import pytest

from impls import BackendUnavailable, backend, frameworks
from verify import headroom


def pytest_configure(config) -> None:
    # JAX's compiled programs kept between runs: the same program, options and version load instead of compiling
    # (DESIGN.md, "Verification time"). The first run on a clone compiles everything.
    frameworks.use_jax_compile_cache(config.rootpath / ".cache" / "jax")


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


@pytest.hookimpl(tryfirst=True)  # before junitxml writes its file
def pytest_sessionfinish(session) -> None:
    config = session.config
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the book over
        workeroutput["headroom"] = headroom.dump()
    elif getattr(config, "_headroom_from_workers", False):  # xdist's controller: write what the workers found
        xml = next((p for p in config.pluginmanager.get_plugins() if type(p).__name__ == "LogXML"), None)
        for name, value in headroom.properties() if xml is not None else ():
            xml.add_global_property(name, value)  # what record_testsuite_property does, where it works


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """xdist's controller, as each worker finishes: merge its headroom book into this process's."""
    headroom.merge(getattr(node, "workeroutput", {}).get("headroom", []))
    node.config._headroom_from_workers = True
