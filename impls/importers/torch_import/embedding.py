"""nn.Embedding: the lookup of the model's integer ids; and `masking`, which torch has no layer for.

nn.Embedding reading the input makes the input integer ids (input_dtype int64); padding_idx, max_norm and
scale_grad_by_freq are refused.
"""

from __future__ import annotations

from typing import Any

from ...layouts import PLAIN
from .context import REGISTRY, Node, Step, _Ctx, _step, nn

REGISTRY.absent("masking", "torch.nn has no Masking layer: torch users pass the lengths "
                           "(nn.utils.rnn.pack_padded_sequence) or multiply by a mask they compute in forward; "
                           "neither is a layer a description's masking comes from")  # fmt: skip


@REGISTRY.register(nn.Embedding, kinds=("embedding",))
def _embedding(ctx: _Ctx, node: Node, m: Any) -> Step:
    if m.padding_idx is not None:
        raise ctx.refuse(node, f"padding_idx={m.padding_idx}: that row gets no gradient (torch zeroes it in the "
                               "backward), which the description's embedding does not; it is not a mask either")  # fmt: skip
    if m.max_norm is not None:
        raise ctx.refuse(node, f"max_norm={m.max_norm}: torch renormalises the rows it looks up (in place, in the "
                               "forward); the description's lookup returns the table's rows as they are")  # fmt: skip
    if m.scale_grad_by_freq:
        raise ctx.refuse(node, "scale_grad_by_freq=True scales the gradient by the ids' frequency in the batch; the "
                               "description's embedding does not")  # fmt: skip
    if node.args[0].op != "placeholder":
        raise ctx.refuse(node, "it reads a computed tensor; the description's embedding takes the model's integer ids")
    if m.sparse:
        ctx.notes.append(f"{node.name}: sparse=True gives a sparse gradient, the same numbers as a dense one")
    opts = {"input_dim": int(m.num_embeddings), "output_dim": int(m.embedding_dim)}
    return _step(ctx, node, "embedding", opts, {"embeddings": ctx.array(m.weight)}, PLAIN)

