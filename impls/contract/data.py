"""Training data for the seed models, made locally and deterministically: nothing is downloaded.

Images (the CNN model, (28, 28, 1)): scikit-learn's handwritten digits, which ship inside the
scikit-learn package (1797 images, 8x8, integer intensities 0..16, labels 0..9). Each image is
brought to 28x28x1 by
    1. nearest-neighbour upsampling x3 with np.kron(image, ones((3, 3)))  ->  24x24
    2. a 2-pixel zero border on every side                                ->  28x28
    3. division by 16, the digits' maximum intensity                      ->  values in [0, 1]
and a trailing channel axis. (MNIST's own digits sit in a 20x20 box centred in 28x28; 24x24 in 28x28
is the nearest whole-number upsampling of 8x8.)

Sequences (the GRU model, (100, 64), 10 classes): a frequency-classification task. A sequence of
class c in 0..9 is
    x[t, f] = a_f * sin(2 pi (c + 1) t / 50 + phi) + 0.5 * noise[t, f],   t = 0..99, f = 0..63
with per-feature amplitudes a_f ~ U(0.5, 1.5) fixed for the task (task seed), a per-sequence phase
phi ~ U(0, 2 pi), noise ~ N(0, 1) and classes drawn uniformly: the class is how many cycles the
shared oscillation makes every 50 steps, which a GRU has to integrate over time to tell.
"""

from __future__ import annotations

import numpy as np

from .models import SEED_CLASSES, SEED_GRU_INPUT

DIGITS_UPSAMPLE = 3  # 8 x 3 = 24
DIGITS_BORDER = 2  # 24 + 2 + 2 = 28
DIGITS_MAX = 16.0  # load_digits intensities are integers 0..16
SEQ_PERIOD_STEPS = 50  # class c makes c + 1 cycles per 50 steps
SEQ_NOISE = 0.5


def onehot(labels: np.ndarray, classes: int = SEED_CLASSES, dtype="float64") -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.min() < 0 or labels.max() >= classes:
        raise ValueError(f"labels must be a 1-D array of ints in [0, {classes}); got shape {labels.shape}")
    return np.eye(classes, dtype=dtype)[labels]


def digits_28(dtype="float64") -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as (N, 28, 28, 1) images in [0, 1] and (N, 10) one-hot labels, N = 1797."""
    from sklearn.datasets import load_digits  # ships its data inside the package: no download

    d = load_digits()
    up = np.kron(d.images, np.ones((1, DIGITS_UPSAMPLE, DIGITS_UPSAMPLE)))  # (N, 24, 24)
    b = DIGITS_BORDER
    x = np.pad(up, ((0, 0), (b, b), (b, b))) / DIGITS_MAX  # (N, 28, 28)
    return x[..., None].astype(dtype), onehot(d.target, SEED_CLASSES, dtype)


def sequence_task(n: int, seed: int = 0, dtype="float64", task_seed: int = 1234) -> tuple[np.ndarray, np.ndarray]:
    """n sequences (n, 100, 64) of the frequency-classification task above and (n, 10) one-hot labels."""
    T, F = SEED_GRU_INPUT
    amplitude = np.random.default_rng(task_seed).uniform(0.5, 1.5, F)  # a_f, one draw for the task
    g = np.random.default_rng(seed)
    labels = g.integers(0, SEED_CLASSES, n)
    phase = g.uniform(0.0, 2 * np.pi, (n, 1))
    t = np.arange(T)[None, :]  # (1, T)
    wave = np.sin(2 * np.pi * (labels[:, None] + 1) * t / SEQ_PERIOD_STEPS + phase)  # (n, T)
    x = wave[:, :, None] * amplitude + SEQ_NOISE * g.standard_normal((n, T, F))  # (n, T, F)
    return x.astype(dtype), onehot(labels, SEED_CLASSES, dtype)


def make_batches(
    x: np.ndarray, y: np.ndarray, batch: int = 32, steps: int = 20, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`steps` batches of `batch` examples in one seeded shuffled order, without repetition."""
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: x.shape={x.shape}, y.shape={y.shape}")
    if batch * steps > len(x):
        raise ValueError(f"{steps} batches of {batch} need {batch * steps} examples; only {len(x)} given")
    order = np.random.default_rng(seed).permutation(len(x))[: batch * steps]
    return [(x[i], y[i]) for i in order.reshape(steps, batch)]


def seed_batches(model: str, steps: int = 20, batch: int = 32, seed: int = 0, dtype="float64"):
    """The training batches of a seed model: "cnn" -> digits_28, "gru" -> sequence_task."""
    if model == "cnn":
        x, y = digits_28(dtype)
    elif model == "gru":
        x, y = sequence_task(batch * steps, seed=seed + 1, dtype=dtype)
    else:
        raise ValueError(f"unknown seed model {model!r}; valid: 'gru', 'cnn'")
    return make_batches(x, y, batch, steps, seed)
