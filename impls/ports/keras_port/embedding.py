"""The Keras port's embedding kinds: embedding (keras.layers.Embedding) and masking (keras.layers.Masking), the two
layers that make a padding mask (Embedding with mask_zero=True).

An Embedding's Keras lookup (ops.take) wraps a negative id to a row from the end: the written file cannot refuse one,
the built voice refuses it at its boundary (Model.check_input), and says so (embedding_notes).
"""

from __future__ import annotations

from ...model.description import Model
from .emitters import EMITTERS, Site, Weights, keras


@EMITTERS.register("embedding", weights=Weights(lambda opts: ["embeddings"]))
def embedding(opts: dict, at: Site) -> list:
    return [keras.layers.Embedding(opts["input_dim"], opts["output_dim"], mask_zero=opts["mask_zero"], dtype=at.dt,
                                   name=at.name)]  # fmt: skip


@EMITTERS.register("masking")
def masking(opts: dict, at: Site) -> list:
    return [keras.layers.Masking(opts["mask_value"], dtype=at.dt, name=at.name)]


def embedding_notes(model: Model) -> list[str]:
    """What the voice says of each embedding: Keras wraps a negative id, the voice refuses it at its boundary."""
    return [f"{la.label(i)}: keras.layers.Embedding looks ids up with ops.take, which wraps a negative id to a row "
            "from the end; the written .keras file cannot refuse it, this voice refuses it at the boundary "
            "(Model.check_input)" for i, la in enumerate(model.layers) if la.kind == "embedding"]  # fmt: skip


__all__ = ["embedding", "embedding_notes", "masking"]
