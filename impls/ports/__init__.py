"""Ports: a model description -> a model its target framework loads without nnparity (`nnparity port`), and the
built-in voices' builds of any model, which are the same objects (impls/model/voices.py)."""
