"""A compiled CPU kernel of the LIF scan (eqs 1-5, ``lif_kernel.cpp``), built on first use; the PyTorch loop is the fallback.

Each thread takes a block of neurons and runs the whole time recurrence for it, so there is no
per-step synchronisation and no per-step Python overhead. The arithmetic is written in the same
order as the PyTorch loop in ``neuron.py`` (and floating-point contraction is off), so both paths
give the same spikes; tests check both against the step-by-step reference.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import torch

__all__ = ["cpu_kernel", "kernel_error"]

_SOURCE = Path(__file__).with_name("lif_kernel.cpp")

_lock = threading.Lock()
_module = None
_failed: str | None = None


def cpu_kernel():
    """The compiled module, or None when disabled (ROUSER_NO_KERNEL=1) or when it cannot be built here."""
    global _module, _failed
    if os.environ.get("ROUSER_NO_KERNEL") == "1" or _failed is not None:
        return None
    with _lock:
        if _module is None and _failed is None:
            try:
                from torch.utils.cpp_extension import load_inline

                _module = load_inline(name="rouser_lif_cpu_v5", cpp_sources=[_SOURCE.read_text()],
                                      functions=["lif_forward", "lif_backward"],
                                      extra_cflags=["-O3", "-ffp-contract=off", "-fno-math-errno", "-fopenmp-simd"],
                                      extra_ldflags=["-lmvec"], verbose=False)
            except Exception as exc:  # no compiler or ninja: the PyTorch loop does the same work
                _failed = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return _module


def kernel_error() -> str | None:
    """Why the compiled kernel is not in use, if it was tried and failed."""
    return _failed
