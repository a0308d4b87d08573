"""What every module of the torch voice from primitives builds on: torch loaded, dtypes, arrays in and out, a weight
as a tensor like x (`_like`), and autograd's plumbing (`_leaf`, `_vjp`). Re-exported by torch_impl.py."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import frameworks

torch = frameworks.load("torch")

_TORCH_ONLY = {"bfloat16": torch.bfloat16}  # dtypes NumPy cannot name


def torch_dtype(dtype: Any) -> Any:
    """A NumPy dtype or name ("float32"), "bfloat16", or a torch dtype -> the torch dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and dtype in _TORCH_ONLY:
        return _TORCH_ONLY[dtype]
    name = np.dtype(dtype).name
    try:
        return getattr(torch, name)
    except AttributeError:
        raise ValueError(f"no torch dtype for {dtype!r}") from None


def asarray(a: Any, dtype: Any = "float64", device: str | None = None) -> Any:
    """A NumPy array (or a tensor) -> a new tensor of `dtype` on `device` (default "cpu")."""
    t = a.detach() if isinstance(a, torch.Tensor) else torch.from_numpy(np.array(a))
    return t.to(device=device or "cpu", dtype=torch_dtype(dtype), copy=True)


def to_numpy(a: Any) -> np.ndarray:
    """Tensor -> NumPy on the host; bfloat16 (which NumPy lacks) comes back as float32."""
    if not isinstance(a, torch.Tensor):
        return np.asarray(a)
    a = a.detach()
    if a.dtype == torch.bfloat16:
        a = a.float()
    return a.cpu().numpy()


def synchronize(device: Any = None) -> None:
    """Wait for queued device work; CPU work is synchronous."""
    if device is None:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()
    elif str(device).startswith("cuda"):
        torch.cuda.synchronize(device)


def _like(a: Any, x: Any) -> Any:
    """A weight (NumPy or tensor) as a tensor of x's dtype on x's device."""
    if isinstance(a, torch.Tensor):
        return a.to(device=x.device, dtype=x.dtype)
    return torch.from_numpy(np.asarray(a)).to(device=x.device, dtype=x.dtype)


def _leaf(a: Any, x: Any) -> Any:
    """A fresh leaf of x's dtype/device that requires grad (never the caller's tensor itself)."""
    return _like(a, x).detach().clone().requires_grad_(True)


def _vjp(out: Any, dy: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    grads = torch.autograd.grad(out, list(inputs.values()), grad_outputs=dy, allow_unused=True)
    return {k: (torch.zeros_like(v) if g is None else g) for (k, v), g in zip(inputs.items(), grads)}
