"""The voices written from primitives, one module per framework: numpy_impl (the float64 reference, with
numpy_conv), torch_impl, tf_impl and jax_impl (with jax_grads). Each implements every equation itself."""
