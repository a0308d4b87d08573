"""The Keras port (voice "keras"): a model description as a keras.Sequential (a chain) or a functional keras.Model (a
graph: merges, a tensor read twice, wired as Layer.inputs say) of Keras' own built-in layers.

    net = keras_model(model, "float32")          # the port itself, weights set through impls/convert.py
    write(model, Path("net.keras"))              # keras.saving.load_model("net.keras") loads it, no custom objects
    built = build(model, "float64")              # the same net, canonical arrays in and out, tf.function

Each layer kind has one emitter in EMITTERS (an impls.registry.Registry keyed by kind), registered in the module of
its family with its per-layer refusal (`check`: the options Keras cannot express) and, for a weighted kind, its
weights' Keras order both ways: recurrent (gru, lstm, take_step), embedding (embedding, masking), convolution
(conv2d, depthwise_conv2d, conv1d), pooling (max/avg pool, global pools), normalization (batch_norm, layer_norm),
activation (activation, dropout), dense, shape (zero_pad2d, flatten, reshape, permute, add, concatenate),
elementwise (multiply, rescale, layer_scale, stochastic_depth), tokens (class_token, position_embedding). `refusal`
asks them layer by layer (emitters.py); assembly.py wires the layers and the channels_first boundary's permutes,
weights.py maps a whole model's weights both ways, voice.py builds the voice and writes the file, train.py steps it.
"""

from __future__ import annotations

from . import activation, convolution, dense, elementwise, embedding, normalization, pooling, recurrent, shape  # noqa: F401 (they register)
from . import attention  # noqa: F401 - issue 25: multi_head_attention
from . import tokens  # noqa: F401 - issue 25: class_token, position_embedding
from . import slicing  # noqa: F401 - issue 24: crop2d, slice, channel_shuffle
from .assembly import assemble, boundary_perms, keras_model, model_name, permutes
from .emitters import DTYPES, EMITTERS, KERAS_NAMES, VOICE, keras, refusal, tf
from .normalization import batch_norm_notes
from .recurrent import lstm_notes
from .train import train_notes, train_step
from .voice import build, port_dtype, write
from .weights import Mains, arrays, canonical, canonical_weights, variables

__all__ = ["DTYPES", "EMITTERS", "KERAS_NAMES", "VOICE", "Mains", "arrays", "assemble", "batch_norm_notes",
           "boundary_perms", "build", "canonical", "canonical_weights", "keras", "keras_model", "lstm_notes",
           "model_name", "permutes", "port_dtype", "refusal", "tf", "train_notes", "train_step", "variables",
           "write"]  # fmt: skip
