"""The Keras importer's padding-mask checks: where Keras masks a layer against where the description's mask reaches
it (Model.mask_sources), GlobalAveragePooling1D under a mask (the mean over the valid steps), and what Keras computes
at a padded attention's steps (impls/model/padding.py says which positions are defined)."""

from __future__ import annotations

import dataclasses

from ...model.description import Model
from .. import UnsupportedLayer


def check_masks(model: Model, masked: dict[int, int], where: str, explicit: set[int] = frozenset()) -> None:
    """Every recurrent layer, attention and pool Keras hands a mask is one the description masks from the same source
    layer, and the other way round: a mask of the user's own, or a chain Keras masks otherwise than the description,
    is refused. `explicit`: the attentions given value_mask= in the graph (not read off their inputs at run time)."""
    sources = model.mask_sources()
    padded = [i for i, la in enumerate(model.layers) if la.kind == "multi_head_attention" and sources[i] is not None]
    padded = padded[:1] + [i for i in padded[1:] if i not in explicit]
    if len(padded) > 1:
        la = model.layers[padded[1]]
        raise UnsupportedLayer(f"{where}: {la.label(padded[1])}: a second attention under the padding mask: Keras' "
                               "MultiHeadAttention reads its inputs' masks at run time and deletes them from its input "
                               f"tensors ({model.layers[padded[0]].label(padded[0])} did), so at run time this one "
                               "attends the padded keys, unlike the mask Keras' graph records (measured 0.26 relative "
                               "on two keras.io blocks); the Keras port passes value_mask= explicitly, an import of that "
                               "is not built")  # fmt: skip
    for i, la in enumerate(model.layers):
        if la.kind not in ("gru", "lstm", "multi_head_attention", "global_avg_pool"):
            continue
        keras_src, ours = masked.get(i), sources[i]
        if keras_src != ours:
            raise UnsupportedLayer(f"{where}: {la.label(i)}: Keras masks it from layer {keras_src}, the description "
                                   f"from layer {ours} (Model.mask_sources): only the padding mask Keras carries from "
                                   "an Embedding(mask_zero=True) or a Masking, through Dense, Activation, Dropout, "
                                   "Add, LayerNormalization, MultiHeadAttention and sequence-returning RNNs, imports (a "
                                   "raw op such as x + a drops Keras' mask: keras.layers.Add keeps it)")  # fmt: skip
    bad = model.unreadable_padding()
    if bad is not None:
        la = model.layers[bad]
        raise UnsupportedLayer(f"{where}: {la.label(bad)} ({la.kind}) reads every step of a padded sequence after a "
                               "padded attention: Keras' MultiHeadAttention weighs every key alike at a padded query "
                               "row, which no other framework computes; read the valid steps only (a "
                               "GlobalAveragePooling1D the mask reaches)")  # fmt: skip


def masked_means(model: Model, masked: dict[int, int]) -> Model:
    """A GlobalAveragePooling1D Keras hands a padding mask averages the valid steps only: masked=True."""
    for i, la in enumerate(model.layers):
        if la.kind == "global_avg_pool" and i in masked:
            model = model.replace_layer(i, dataclasses.replace(la, options={**la.options, "masked": True}))
    return model


__all__ = ["check_masks", "masked_means"]
