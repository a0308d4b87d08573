"""The seed's two models written by hand as torch.nn Modules (SeedGRU, SeedCNN), the way a user writes them, and
the seed models' training with torch.optim.Adam.

The hand-written modules are outside-style models: torch_builtin counts their parameters and FLOPs, the torch
importer and the exporters' tests read them. They hold their own initialisation; canonical weights reach torch
through the torch port (impls/ports/torch_port.py), which is also what train_seed_model trains. SeedCNN takes NHWC
images and flattens NCHW (so an importer must permute dense1's rows).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import frameworks
from ..contract import models, spec
from ..primitives.torch_impl import asarray, to_numpy
from .torch_convert import NHWC_TO_NCHW

torch = frameworks.load("torch")
nn = torch.nn

KERAS_EPSILON = 1e-7  # keras.config.epsilon(), the clip in categorical_crossentropy

__all__ = ["KERAS_EPSILON", "SeedCNN", "SeedGRU", "keras_categorical_crossentropy", "train_seed_model"]


class SeedGRU(nn.Module):
    """GRU(128, return_sequences) -> GRU(64) -> Dense(10, softmax)."""

    def __init__(self, input_size=models.SEED_GRU_INPUT[1], units=models.SEED_GRU_UNITS, classes=models.SEED_CLASSES, device=None, dtype=None):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.gru1 = nn.GRU(input_size, units[0], batch_first=True, **kw)
        self.gru2 = nn.GRU(units[0], units[1], batch_first=True, **kw)
        self.dense = nn.Linear(units[1], classes, **kw)
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x):  # (B, T, I) -> (B, classes) probabilities
        y1, _ = self.gru1(x)  # (B, T, units[0])
        _, h2 = self.gru2(y1)  # (1, B, units[1])
        return self.softmax(self.dense(h2[0]))



class SeedCNN(nn.Module):
    """Conv(32,3x3,relu) -> MaxPool 2 -> Conv(64,3x3,relu) -> MaxPool 2 -> Flatten (NCHW) -> Dense(128,relu)
    -> Dense(10, softmax); input NHWC, flattened NCHW ((c, h, w) order).
    pools=False leaves out both MaxPool layers (for the parameter-count comparison)."""

    def __init__(self, c_in=models.SEED_CNN_INPUT[2], filters=models.SEED_CNN_FILTERS, flat_features=None, dense_units=models.SEED_DENSE_UNITS,
                 classes=models.SEED_CLASSES, pools=True, device=None, dtype=None):  # fmt: skip
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        if flat_features is None:
            flat_features = int(np.prod(_cnn_flat_shape(models.SEED_CNN_INPUT, filters, pools)))
        k, pool = models.SEED_CNN_KERNEL, models.SEED_CNN_POOL
        self.conv1 = nn.Conv2d(c_in, filters[0], k, **kw)
        self.pool1 = nn.MaxPool2d(pool) if pools else nn.Identity()
        self.conv2 = nn.Conv2d(filters[0], filters[1], k, **kw)
        self.pool2 = nn.MaxPool2d(pool) if pools else nn.Identity()
        self.flatten = nn.Flatten()  # NCHW: (c, h, w) order
        self.dense1 = nn.Linear(flat_features, dense_units, **kw)
        self.dense2 = nn.Linear(dense_units, classes, **kw)
        self.relu = nn.ReLU()
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x):  # (B, H, W, C) -> (B, classes) probabilities
        a = x.permute(NHWC_TO_NCHW)
        a = self.pool1(self.relu(self.conv1(a)))
        a = self.pool2(self.relu(self.conv2(a)))
        a = self.relu(self.dense1(self.flatten(a)))
        return self.softmax(self.dense2(a))



def _cnn_flat_shape(image, filters, pools: bool) -> tuple[int, int, int]:
    if pools:
        return models.cnn_feature_shape(image, filters)
    side = [image[0], image[1]]
    for _ in filters:
        side = [spec.out_size(s, models.SEED_CNN_KERNEL, 1, "valid") for s in side]
    return side[0], side[1], filters[-1]


# --------------------------------------------------------------------------- training (issue 3)


def keras_categorical_crossentropy(onehot: Any, probs: Any, eps: float = KERAS_EPSILON) -> Any:
    """Per-sample loss as keras.losses.categorical_crossentropy(from_logits=False) writes it
    (keras/src/backend/tensorflow/nn.py): renormalise the probabilities, clip to [eps, 1 - eps], -sum(t log p).
    (When Keras is handed a softmax output it carries, Keras may use the cached logits instead; the two agree
    wherever every probability lies inside [eps, 1 - eps].)"""
    p = probs / torch.sum(probs, dim=-1, keepdim=True)
    p = torch.clamp(p, eps, 1.0 - eps)
    return -torch.sum(onehot * torch.log(p), dim=-1)


def train_seed_model(model: str, params: Any, batches: list, lr: float = 1e-3, beta_1: float = 0.9,
                     beta_2: float = 0.999, eps: float | None = None, dtype: str = "float64") -> tuple[list[float], Any]:  # fmt: skip
    """The torch port of the seed model + torch.optim.Adam (eps None: torch's default 1e-8) on the mean Keras categorical
    cross-entropy of the softmax probabilities (keras_categorical_crossentropy). losses[i] is batch i's loss
    before update i; returns (losses, final canonical NumPy params). Deterministic: no dropout, seeded."""
    if model not in ("gru", "cnn"):
        raise ValueError(f"unknown model {model!r}; valid: gru, cnn")
    from ..model import seed as seed_models
    from ..ports import torch_port
    from ..train import numpy_train

    x0 = batches[0][0]
    description = (seed_models.from_gru_params(params, "reset_after", int(x0.shape[1])) if model == "gru"
                   else seed_models.from_cnn_params(params, tuple(int(d) for d in x0.shape[1:])))  # fmt: skip
    torch.manual_seed(0)
    net, code = torch_port.load_port(description, dtype)  # the torch port nnparity writes
    net.requires_grad_(True)
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(beta_1, beta_2), eps=1e-8 if eps is None else eps)
    losses = []
    for x, onehot in batches:
        loss = torch.mean(keras_categorical_crossentropy(asarray(onehot, dtype), net(asarray(x, dtype))))
        losses.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    final = torch_port.canonical(description, {k: to_numpy(v) for k, v in net.state_dict().items()}, code)
    return losses, numpy_train.rebuild(params, [final[k] for k in description.parameters()])
