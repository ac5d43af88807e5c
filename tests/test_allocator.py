"""engine/allocator.py: after keep_freed_memory, a large tensor freed and allocated again reuses its pages."""

import json
import subprocess
import sys

import pytest

PROBE = """
import json, resource, sys, torch
from engine.allocator import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else False
faults = []
for _ in range(24):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.ones(300, 128, 500)  # a layer's (T, batch, neurons) float32 tensor at batch 128: 77 MB
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    del x
print(json.dumps(dict(kept=kept, faults=faults)))
"""


def _probe(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_freed_tensors_are_reused_instead_of_faulted_in_again():
    default, kept = _probe("default"), _probe("keep")
    if not kept["kept"]:
        pytest.skip("not glibc: mallopt is unavailable, keep_freed_memory changes nothing")
    pages = 300 * 128 * 500 * 4 // 4096
    assert min(default["faults"][-3:]) > pages // 2  # glibc unmaps a freed 77 MB block: every page faults again
    assert max(kept["faults"][-3:]) < pages // 20  # kept: once the heap has settled (up to
    # ten allocations: memalign needs room for its padding), the pages are reused
