"""Training the seed models: numpy_train (hand-written backward and both Adam conventions), jax_train (JAX's
gradients through the same Adam) and training_parity (every trainer side by side, step by step)."""
