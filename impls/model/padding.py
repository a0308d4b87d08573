"""Which positions of a padded batch the sources define (issue 25).

A padding mask (an embedding's mask_zero, a masking layer) makes some steps padding. At a padded *query* step of an
attention the mask reaches, the frameworks differ: torch's slow path attends the valid keys (the description's
choice), its eval fast path (TransformerEncoder with nested tensors) writes exact zeros, and Keras masks the query row
too (uniform weights over every key). So that attention's output, and every layer's that carries the mask on, is
defined at the valid steps only: `undefined_steps`. Comparisons of those layers read only the valid steps. A layer
that reduces over every step of such a sequence without the mask (a plain mean, a flatten: `unreadable_padding`)
reads undefined values, and is refused where a source or port is built. A row with no valid step has no key to attend
(`check_rows`: torch gives NaN, Keras uniform weights): refused at the input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ModelError


def undefined_steps(model: Any) -> list[int | None]:
    """Per layer, the index of the mask source where the layer's output is a padded sequence whose padded steps the
    sources do not define, or None. An attention the mask reaches starts it; every layer that carries that mask on
    keeps it; a recurrence (reading the valid steps only) and a layer dropping the mask end it."""
    from .layers import spec_of

    sources, out = model.mask_sources(), []
    for i, la in enumerate(model.layers):
        src = sources[i]
        reads = [out[j] for j in model.source_indices(i) if j >= 0]
        kind = spec_of(la.kind, la.label(i))
        if src is None or not kind.makes_mask(kind.options(la.options), True) or la.kind in ("gru", "lstm"):
            out.append(None)
        else:
            out.append(src if la.kind == "multi_head_attention" or any(r is not None for r in reads) else None)
    return out


def unreadable_padding(model: Any) -> int | None:
    """The first layer that reduces over the steps of a sequence whose padded steps are undefined (undefined_steps)
    without the mask: its output, and the model's, depends on them; or None."""
    undefined, sources = model.undefined_steps(), model.mask_sources()
    for i, la in enumerate(model.layers):
        reads = [undefined[j] for j in model.source_indices(i) if j >= 0]
        if not any(r is not None for r in reads) or undefined[i] is not None:
            continue
        if la.kind in ("gru", "lstm") and sources[i] is not None:
            continue  # reads the valid steps only
        if la.kind == "global_avg_pool" and la.options.get("masked") and sources[i] is not None:
            continue
        if la.kind == "take_step" and la.options.get("index") == 0:
            continue  # step 0 is valid in every row (post-padded rows have length >= 1)
        return i
    return None


def check_rows(model: Any, x: np.ndarray) -> None:
    """A row of ids with no valid step, where an attention the embedding's mask reaches has no key to attend:
    ModelError naming the row and the layer."""
    first = model.layers[0]
    sources = model.mask_sources()
    attended = [i for i, la in enumerate(model.layers) if la.kind == "multi_head_attention" and sources[i] == 0]
    if not attended or first.kind != "embedding":
        return
    empty = np.flatnonzero(~np.any(np.asarray(x) != 0, axis=1))
    if empty.size:
        raise ModelError(f"model {model.name!r}: row {int(empty[0])} of the ids is padding only, and "
                         f"{model.layers[attended[0]].label(attended[0])} has no key to attend there: torch's attention "
                         "gives NaN, Keras' uniform weights over the padding; no output is defined (refused: give "
                         "every row at least one valid step)")  # fmt: skip


__all__ = ["check_rows", "undefined_steps", "unreadable_padding"]
