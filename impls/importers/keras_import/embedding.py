"""The Keras importer's sequence inputs: Embedding (the first layer, fed integer ids; mask_zero; a LoRA or quantized
table refused) and Masking (mask_value). Both start the padding mask Keras carries itself to the recurrent layers;
the description's Model.mask_sources says the same, and the walker checks the two agree."""

from __future__ import annotations

import numpy as np

from ... import frameworks
from .context import REGISTRY, Context, Converted

L = frameworks.load("keras").layers


@REGISTRY.register(L.Embedding, kinds=("embedding",), mask_maker=True)
def _embedding(c: Context) -> Converted:
    cfg = c.config
    if c.position != 0:
        raise c.refuse("an Embedding imports as the model's first layer only (the one fed the integer token ids)")
    if not np.issubdtype(np.dtype(c.input_dtype), np.integer):
        raise c.refuse(f"the model's input is {c.input_dtype}: Keras would cast it to int32 ids (truncating); give "
                       "the model an integer keras.Input(dtype='int32') to import it")  # fmt: skip
    if cfg.get("lora_rank") or getattr(c.layer, "quantization_mode", None):
        raise c.refuse("a LoRA or quantized Embedding is not a plain table lookup")
    # embeddings_constraint / regularizer / initializer only act in training or at init
    opts = {"input_dim": int(cfg["input_dim"]), "output_dim": int(cfg["output_dim"]), "mask_zero": bool(cfg["mask_zero"])}
    return "embedding", opts, {"embeddings": c.weight("embeddings")}


@REGISTRY.register(L.Masking, kinds=("masking",), mask_maker=True)
def _masking(c: Context) -> Converted:
    return "masking", {"mask_value": float(c.config["mask_value"])}, {}
