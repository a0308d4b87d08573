"""The voices written from primitives, one module per framework offering every op-contract name (what impls.backend
returns), each re-exporting the sibling modules that hold its cohesive parts: numpy_impl, the float64 reference
(numpy_gru, numpy_conv, numpy_seq, numpy_activations); torch_impl (torch_core, torch_seq, torch_conv); tf_impl
(tf_core, tf_seq, tf_conv); jax_impl (jax_core, jax_seq, jax_conv, jax_grads). `_core` holds dtypes, arrays in
and out and the autograd plumbing, `_seq` the LSTM, embeddings and padded sequences, `_conv` conv2d and the pools.
Each implements every equation itself."""
