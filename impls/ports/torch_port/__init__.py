"""The torch port (voice "torch_nn"): a model description -> a folder with model.py (an nn.Module that imports only
torch) and weights.pt (its state dict of plain tensors), `from model import load; m = load()`.

    why = refusal(model, "float32")          # None, or what torch.nn cannot express, naming the layer
    files = write(model, Path("out"))        # [out/model.py, out/weights.pt]
    built = build(model, "float64")          # that same port, in process: forward, vjp, step, outputs, rebind
    loss, weights = train_step(model, x, t)  # one torch.optim.Adam step on the port, weights back to canonical

`build` writes no file: it execs the text `write` writes for model.py as a module of its own and loads the state
dict from the arrays weights.pt holds, as model.py's load() does, so the voice the certificate measures computes
what the files a user gets compute. `built.outputs(x)` gives every layer's output from one forward (a recording
variant of forward, never written); `built.rebind(model2)` runs a model of the same structure through the same
class. The package:

    code.py           the code generator: `generate` walks the graph, EMITTERS (layer kind -> emitter) writes each
                      layer; source.py the text of model.py around the layers' lines
    recurrent.py      lstm, gru (a GRU variant torch.nn lacks is refused), take_step
    embedding.py      embedding, masking (the padding mask's lengths)
    convolution.py    conv2d, depthwise_conv2d, conv1d
    pooling.py        max_pool2d, avg_pool2d, global_avg_pool, global_max_pool
    normalization.py  batch_norm (torch_momentum; center != scale refused), layer_norm (center without scale refused)
    activation.py     activation, dropout
    dense.py          dense
    shape.py          zero_pad2d, flatten, reshape, permute, add, concatenate
    elementwise.py    multiply, rescale, layer_scale, stochastic_depth
    files.py          write, load_port, state_dict, canonical;  notes.py refusal, notes_for
    build.py          build (in memory), train_step
"""

from __future__ import annotations

from . import activation, code, convolution, dense, elementwise, embedding, normalization, pooling, recurrent, shape
from . import attention  # noqa: F401 - issue 25: multi_head_attention
from . import tokens  # noqa: F401 - issue 25: class_token, position_embedding
from . import slicing  # noqa: F401 - issue 24: crop2d, slice, channel_shuffle
from . import code as torch_code  # the generator, by the name it had as impls/ports/torch_code.py
from .build import build, train_step
from .code import DTYPES, EMITTERS, VOICE, Code, generate, port_dtype
from .files import FILES, canonical, load_port, state_dict, write
from .notes import notes_for, refusal

FAMILIES = (recurrent, embedding, convolution, pooling, normalization, activation, dense, shape, elementwise)
"""The emitter modules, one a family of kinds: importing them registers their emitters in EMITTERS."""

__all__ = ["DTYPES", "EMITTERS", "FAMILIES", "FILES", "VOICE", "Code", "build", "canonical", "code", "generate",
           "load_port", "notes_for", "port_dtype", "refusal", "state_dict", "torch_code", "train_step", "write"]
