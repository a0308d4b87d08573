"""keras.layers.GRU as nnparity builds it: which reset_after flag computes a canonical variant, and the recurrent
initializer of every GRU and LSTM it builds. Framework-free: the built-in Keras voice (impls/builtin/keras_builtin.py)
and the Keras port (impls/ports/keras_port/) share it, so the port does not import the voice, which trains the seed
models through the port."""

from __future__ import annotations

KERAS_GRU = {"reset_after": True, "reset_before": False}
"""Canonical variant -> keras.layers.GRU(reset_after=...). The other variants have no Keras layer."""


REC_INIT = "zeros"
"""recurrent_initializer of every GRU built here. The weights are always replaced before use, and Keras'
default ("orthogonal") runs a QR, which TensorFlow has no bfloat16 kernel for."""

__all__ = ["KERAS_GRU", "REC_INIT"]
