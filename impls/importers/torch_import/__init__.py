"""The torch importer: a torch.nn.Module -> a model description, through torch.fx.

    imported = from_module(net, (3, 1, 28, 28), "net.py:model")   # the input shape batch first, torch's layout

The module is traced with torch.fx.symbolic_trace and its nodes are read in the traced (topological) order by a
registry of small converters keyed by module class, function or Tensor method (`REGISTRY`: nn.Conv2d, torch.relu,
"view"), as a graph: a layer may read any earlier layer's output, and paths join by `x + y` / torch.add (add) and
torch.cat(dim=d) (concatenate on the description's axis of torch's dim d), and x * y (multiply). A miss, another join
(x / y), a module with weights called twice (shared weights), or an option the description lacks is UnsupportedLayer
naming the node, its class or function and its position. Weights become canonical arrays in the module's own dtype
through impls/convert.py.

    walker.py         the walk of the traced graph, the layout bookkeeping, from_module's assembly
    context.py        REGISTRY, Step, the walk's context and the readers of fx nodes every converter shares
    trace.py          the shape pass: every node's shape for the user's input shape
    recurrent.py      nn.LSTM, nn.GRU (and the take_step a bidirectional out[:, -1] needs)
    embedding.py      nn.Embedding (masking: torch has no layer for it)
    convolution.py    nn.Conv2d, nn.Conv1d (depthwise_conv2d: a grouped nn.Conv2d)
    pooling.py        max / avg pools, adaptive pools and x.mean / x.amax as global pools
    normalization.py  nn.BatchNorm1d/2d, nn.LayerNorm
    dense.py          nn.Linear
    activation.py     ReLU, Tanh, Sigmoid, Softmax (modules and functions), Dropout, Identity
    shape.py          ZeroPad2d, flatten, view / reshape, permute / transpose; the merges add and cat
    elementwise.py    x + y, x * y, a tensor with a constant (rescale), a parameter times x (layer_scale),
                      torchvision's stochastic_depth
"""

from __future__ import annotations

from ... import convert  # noqa: F401 - the module every converter calls through (tests patch torch_import.convert)
from . import activation, convolution, dense, elementwise, embedding, normalization, pooling, recurrent, shape  # noqa: F401 - each registers its converters
from . import attention  # noqa: F401 - issue 25: attention
from . import tokens  # noqa: F401 - issue 25: class_token, position_embedding
from . import slicing  # noqa: F401 - issue 24: chunk, split, [a:b], channel shuffle
from .context import REGISTRY, Step, supported
from .walker import from_module

__all__ = ["REGISTRY", "Step", "from_module", "supported"]
