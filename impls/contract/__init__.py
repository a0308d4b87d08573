"""The contract every voice keeps, framework-free: canonical layouts and shape checks (spec, conv_spec), the seed
models as data (models), seeded inputs and training data (inputs, data), what a voice may refuse (limits), the
tolerance table (tolerance), parameter and FLOP formulas (formulas) and variant re-parameterisations (reparam)."""
