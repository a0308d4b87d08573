"""The voices built from the frameworks' own layers, fed canonical weights through impls/convert.py: torch_builtin
(with torch_convert and torch_models), keras_builtin (with keras_conv) and flax_builtin (with flax_layers and
flax_grads)."""
