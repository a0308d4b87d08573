"""The Flax port: a model description -> `OUT/model.py` (readable flax.linen code that imports only jax, flax and
numpy) and `OUT/variables.npz` (the params, flat, read with allow_pickle=False). The voice "flax" of the general
path is that very code, exec'd in memory with the same variables (no file written or read) and run under jax.jit;
its build gives every layer's output from one forward (Built.outputs) and runs another model of the same structure
without generating or compiling anything again (Built.rebind).

    files = write(model, Path("out"))        # out/model.py, out/variables.npz
    from model import load                   # (with out/ on the path; no nnparity needed)
    module, variables = load()
    y = module.apply(variables, x)

Each layer kind is a few lines of linen written by its emitter (EMITTERS, an impls.registry.Registry keyed by layer
kind), one module a family: recurrent (gru, lstm, take_step), embedding (embedding, masking), convolution (conv2d,
depthwise_conv2d, conv1d), pooling (max/avg pools, global pools), normalization (batch_norm, layer_norm),
activation (activation, dropout), shape (zero_pad2d, flatten, reshape, permute, add, concatenate), dense and
elementwise (multiply, rescale, layer_scale, stochastic_depth). A
layer's options the port cannot express are refused by the check registered with its kind's emitter (`refusal`).
Around them: emit (the registry, the refusal, the names in the Flax tree), codegen (the text of model.py), layout
(the boundary's transposes), weights (the weight maps both ways), program (the generated code exec'd in memory and
jitted, shared by rebound builds), voice (write, build) and train (train_step, project_for_training).
"""

from __future__ import annotations

# the families: importing each registers its emitters in EMITTERS
from . import activation, convolution, dense, elementwise, embedding, normalization, pooling, recurrent, shape  # noqa: F401
from . import attention  # noqa: F401 - issue 25: multi_head_attention
from . import tokens  # noqa: F401 - issue 25: class_token, position_embedding
from . import slicing  # noqa: F401 - issue 24: crop2d, slice, channel_shuffle
from .codegen import source
from .emit import (
    DTYPES,
    EMITTERS,
    MERGES,
    NORMS,
    RECURRENT,
    VOICE,
    backward_name,
    flax_names,
    port_dtype,
    refusal,
)
from .layout import MAP_KEEPERS, MAP_READERS, feature_maps
from .normalization import batch_norm_notes
from .train import NOT_TRAINING_EXACT, NOT_TRAINING_EXACT_LSTM, TrainStep, project_for_training, train_step
from .voice import build, load_port, write
from .weights import batch_stats, canonical, params

__all__ = ["DTYPES", "EMITTERS", "MAP_KEEPERS", "MAP_READERS", "MERGES", "NORMS", "NOT_TRAINING_EXACT",
           "NOT_TRAINING_EXACT_LSTM", "RECURRENT", "VOICE", "TrainStep", "backward_name", "batch_norm_notes",
           "batch_stats", "build", "canonical", "feature_maps", "flax_names", "load_port", "params", "port_dtype",
           "project_for_training", "refusal", "source", "train_step", "write"]
