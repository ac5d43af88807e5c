import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(params=["kernel", "loop"])
def backend(request, monkeypatch):
    """Run a test on the compiled CPU kernels and on the PyTorch fallbacks (the loop, also the GPU path)."""
    if request.param == "loop":
        monkeypatch.setenv("ROUSER_NO_KERNEL", "1")
    else:
        monkeypatch.delenv("ROUSER_NO_KERNEL", raising=False)
        from engine.kernels import cpu_kernel, kernel_error

        if cpu_kernel() is None:
            if os.environ.get("CI"):
                pytest.fail(f"the CPU kernel did not build: {kernel_error()}")
            pytest.skip(f"no compiled kernel here: {kernel_error()}")
    return request.param
