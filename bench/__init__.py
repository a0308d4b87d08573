"""nnparity's benchmark suite (pytest-benchmark): every implementation x mode x work x size x dtype x
device, with FLOPs, bytes and the error against the NumPy float64 reference in each row's extra_info.
See bench/README.md."""
