"""nnparity's command: certify any model built from the verified layers, and port it to another framework.

    nnparity certify model.keras                       # -> ./certificate-model/certificate.{md,json,png}
    nnparity port model.keras --to torch -o model_torch

The pipeline reads off the tree: import (impls/importers) -> description (impls/model) -> build in every voice
(impls/model/voices.py) -> certificate (certify/, certificate/, plot.py) or port (port.py). cli.py is the command line.
"""

from __future__ import annotations

__all__: list[str] = []
