"""Checkpoints written atomically, so a crash or a NaN never destroys the last good one."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .errors import RouserError

__all__ = ["CHECKPOINT_NAME", "save_checkpoint", "load_checkpoint"]

CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(state: dict, folder: Path) -> Path:
    """Write ``state`` to folder/checkpoint.pt through a temporary file and an atomic rename."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CHECKPOINT_NAME
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(folder: Path) -> dict:
    """Read folder/checkpoint.pt (or the file itself); a missing or unreadable one is a RouserError."""
    path = folder if folder.is_file() else folder / CHECKPOINT_NAME
    if not path.exists():
        raise RouserError(f"no checkpoint at {path}; pass the --out folder of an earlier run to --resume")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file
        raise RouserError(f"cannot read checkpoint {path} ({type(exc).__name__}); it is damaged or not a rouser checkpoint") from None
