"""Compiled CPU kernels, built on first use; PyTorch ops are the fallback.

``lif_kernel.cpp``: the LIF scan (eqs 1-5). Each thread takes a block of neurons and runs the whole time
recurrence for it, so there is no per-step synchronisation and no per-step Python overhead. The arithmetic
is written in the same order as the PyTorch loop in ``neuron.py`` (and floating-point contraction is off),
so both paths give the same spikes; tests check both against the step-by-step reference.

``spike_kernel.cpp``: eq 1's synaptic input and weight gradient for 0/1 spikes as CSR indices (a spike
selects a row of weights to add), and the CSR builders. ``spike_scan.cpp``: the scan driven straight by
input spikes, summing x[t-1] in registers at the step that uses it (x is never stored), forward and backward.

The module is compiled for this machine's instruction set (``-march=native``); its name carries a digest
of the CPU's flags, so a build cache shared between different machines never loads a foreign build. It is
built with OpenMP (``at::parallel_for`` runs serially without it) and shares PyTorch's runtime: the
library it needs, libgomp.so.1, is the one PyTorch has already loaded.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

__all__ = ["cpu_kernel", "kernel_error"]

_SOURCES = [Path(__file__).with_name(name) for name in ("lif_kernel.cpp", "spike_kernel.cpp", "spike_scan.cpp")]
_FUNCTIONS = ["lif_forward", "lif_backward", "spike_product", "spike_weight_grad", "dense_to_csr", "pairs_to_csr",
              "lif_forward_spikes", "lif_backward_spikes"]
_VERSION = 16

_lock = threading.Lock()
_module = None
_failed: str | None = None


def _cpu_digest() -> str:
    """A short digest of the CPU model and flags (the build targets them)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        text = "\n".join(sorted({l for l in lines if l.startswith(("flags", "model name", "vendor_id"))}))
    except OSError:
        import platform

        text = platform.processor() + platform.machine()
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def cpu_kernel():
    """The compiled module, or None when disabled (ROUSER_NO_KERNEL=1) or when it cannot be built here."""
    global _module, _failed
    if os.environ.get("ROUSER_NO_KERNEL") == "1" or _failed is not None:
        return None
    with _lock:
        if _module is None and _failed is None:
            try:
                from torch.utils.cpp_extension import load_inline

                _module = load_inline(name=f"rouser_cpu_v{_VERSION}_{_cpu_digest()}",
                                      cpp_sources=[p.read_text() for p in _SOURCES], functions=_FUNCTIONS,
                                      extra_cflags=["-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno",
                                                    "-fopenmp"],
                                      extra_ldflags=["-fopenmp", "-lmvec"], verbose=False)
            except Exception as exc:  # no compiler or ninja: the PyTorch loop does the same work
                _failed = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return _module


def kernel_error() -> str | None:
    """Why the compiled kernel is not in use, if it was tried and failed."""
    return _failed
