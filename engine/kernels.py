"""Compiled CPU kernels, built on first use; PyTorch ops are the fallback.

``lif_kernel.cpp``: the LIF scan (eqs 1-5). Each thread takes a block of neurons and runs the whole time
recurrence for it, so there is no per-step synchronisation and no per-step Python overhead. The arithmetic
is written in the same order as the PyTorch loop in ``neuron.py`` (and floating-point contraction is off),
so both paths give the same spikes; tests check both against the step-by-step reference.

``spike_kernel.cpp``: eq 1's synaptic input and weight gradient for 0/1 spikes as CSR indices (a spike
selects a row of weights to add), and the CSR builders. ``spike_scan.cpp``: the scan driven straight by
input spikes, summing x[t-1] in registers at the step that uses it (x is never stored), forward and backward.

The module is compiled for this machine's instruction set (``-march=native``); its name carries a digest
of the CPU's flags, the sources, the compiler flags and the PyTorch install, so a build cache shared between
machines, checkouts or environments never loads (or rebuilds over) a foreign build. Every build and load takes an
OS file lock first, so a PyTorch build lock left by a killed process is found stale and removed instead of being
waited on forever. It is built with OpenMP (``at::parallel_for`` runs serially without it) and shares PyTorch's
runtime: the library it needs, libgomp.so.1, is the one PyTorch has already loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import warnings
from pathlib import Path

try:
    import fcntl
except ImportError:
    fcntl = None

__all__ = ["cpu_kernel", "kernel_error"]

_SOURCES = [Path(__file__).with_name(name) for name in ("lif_kernel.cpp", "spike_kernel.cpp", "spike_scan.cpp")]
_FUNCTIONS = ["lif_forward", "lif_backward", "spike_product", "spike_weight_grad", "dense_to_csr", "pairs_to_csr",
              "lif_forward_spikes", "lif_backward_spikes"]

_CFLAGS = ["-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-fopenmp"]
_LDFLAGS = ["-fopenmp", "-lmvec"]

_lock = threading.Lock()
_module = None
_failed: str | None = None


def _cpu_text() -> str:
    """The CPU model and flags (the build targets them)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return "\n".join(sorted({l for l in lines if l.startswith(("flags", "model name", "vendor_id"))}))
    except OSError:
        import platform

        return platform.processor() + platform.machine()


def _build_name(sources: list[str]) -> str:
    """The build's folder name: a digest of the CPU, the sources, the flags and the PyTorch install (its headers
    and library), so that checkouts with other sources, or environments with another PyTorch, never rebuild over
    each other's module."""
    import torch

    text = "\0".join([_cpu_text(), *sources, *_CFLAGS, *_LDFLAGS, str(Path(torch.__file__).parent), torch.__version__])
    return f"rouser_cpu_{hashlib.sha1(text.encode()).hexdigest()[:12]}"


def _build_directory(name: str) -> Path:
    """The folder PyTorch builds ``name`` in, with its build lock (``lock``): $TORCH_EXTENSIONS_DIR/name, or by
    default a subfolder per Python and accelerator of the cache root (``~/.cache/torch_extensions/py311_cpu/name``).
    PyTorch's own function decides, so the two can never disagree."""
    from torch.utils.cpp_extension import _get_build_directory

    return Path(_get_build_directory(name, verbose=False))


@contextlib.contextmanager
def _build_lock(name: str):
    """Hold an OS file lock on the build of ``name`` (the OS releases it if this process dies), and under it remove
    the lock file that PyTorch's own build lock leaves behind when a process is killed holding it: every process
    that builds or loads ``name`` takes this lock first, so under it that file can only be stale. PyTorch would
    otherwise wait on it forever."""
    folder = _build_directory(name)  # (created by PyTorch)
    with open(folder.parent / f"{name}.flock", "w") as handle:
        if fcntl is not None:  # (Windows has none: PyTorch's own lock alone)
            fcntl.flock(handle, fcntl.LOCK_EX)
            stale = folder / "lock"
            if stale.exists():
                stale.unlink()
                warnings.warn(f"removed a kernel build lock ({stale}) left by a process that was stopped", stacklevel=3)
        yield


def cpu_kernel():
    """The compiled module, or None when disabled (ROUSER_NO_KERNEL=1) or when it cannot be built here."""
    global _module, _failed
    if os.environ.get("ROUSER_NO_KERNEL") == "1" or _failed is not None:
        return None
    with _lock:
        if _module is None and _failed is None:
            try:
                from torch.utils.cpp_extension import load_inline

                sources = [p.read_text() for p in _SOURCES]
                name = _build_name(sources)
                with _build_lock(name):  # (copies of the flags: PyTorch appends its own to the lists it is given)
                    _module = load_inline(name=name, cpp_sources=sources, functions=_FUNCTIONS,
                                          extra_cflags=list(_CFLAGS), extra_ldflags=list(_LDFLAGS), verbose=False)
            except Exception as exc:  # no compiler or ninja: the PyTorch loop does the same work
                _failed = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return _module


def kernel_error() -> str | None:
    """Why the compiled kernel is not in use, if it was tried and failed."""
    return _failed
