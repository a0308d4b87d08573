"""The Keras importer: a Keras 3 .keras file (loaded with safe_mode on) or a keras.Model -> a model description.

    imported = load_file(Path("mnist.keras"), None)       # the model's own input shape
    imported = from_model(net, (3, 100, 64), "net.py:net")  # --input-shape, batch first

walker.py reads the model's graph (a Sequential or a functional DAG of built-in layers and the raw ops it records
for arithmetic, nested Sequential or functional models flattened into it, one input and one output) and builds the
Imported; keras_file.py checks and loads a .keras file. Each layer goes through one small converter,
registered in REGISTRY (context.py) by its exact class in the module of its family; a class that is not there
(SimpleRNN, ZeroPadding1D, a custom or subclassed layer) is UnsupportedLayer naming the layer, its class, its
position and the supported list. Weights are read in Keras' own layouts, the canonical ones except the recurrent
layers' (recurrent.py). Keras carries the padding masks itself; the description's Model.mask_sources says the same.
"""

from __future__ import annotations

# The families register their converters as they are imported, in this order: the order refusals list them in.
# isort: off
from . import core, convolution, pooling, normalization, shape, activation, embedding, recurrent  # noqa: F401
from . import elementwise  # noqa: F401 - issue 24: Multiply, raw ops, Rescaling, Normalization, LayerScale
from . import slicing  # noqa: F401 - issue 24: Cropping2D, Cropping1D
from . import attention  # noqa: F401 - issue 25: attention
from . import tokens  # noqa: F401 - issue 25: class_token, position_embedding
# isort: on
from .context import REGISTRY, Context, Converted, supported
from .keras_file import load_file
from .walker import from_model

__all__ = ["REGISTRY", "Context", "Converted", "from_model", "load_file", "supported"]
