"""Data-parallel training with torch.distributed: process group set-up and metric reductions.

Launched by ``torchrun`` (RANK, WORLD_SIZE, LOCAL_RANK in the environment), a run uses NCCL on GPUs
and Gloo on CPUs. Without those variables everything here is a no-op for one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["World", "current_world", "shutdown"]


@dataclass(frozen=True)
class World:
    """This process's place among the ranks of a run."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def device(self, requested: torch.device) -> torch.device:
        """Each rank's own GPU when training on CUDA."""
        if requested.type == "cuda" and self.distributed:
            return torch.device("cuda", self.local_rank)
        return requested

    def shard(self, indices):
        """This rank's part of a global batch (rank r takes every size-th sample from r)."""
        return indices[self.rank::self.size]

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum over ranks (in place, returned for chaining)."""
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def max(self, tensor: torch.Tensor) -> torch.Tensor:
        """Maximum over ranks (in place, returned for chaining)."""
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return tensor


def current_world(device: torch.device) -> World:
    """Join the process group torchrun describes (once per process); one process without torchrun."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def shutdown() -> None:
    """Leave the process group together (a rank exiting alone can abort its peers mid-teardown)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
