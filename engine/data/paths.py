"""Where datasets are read from and where binned spikes are cached.

Data root: the ``data_root`` argument, else ``$ROUSER_DATA``, else ``~/rouser-data``.
Cache: the ``cache_dir`` argument, else ``$ROUSER_CACHE``, else ``~/.cache/rouser``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DEFAULT_DATA_ROOT", "DEFAULT_CACHE_DIR", "resolve_data_root", "resolve_cache_dir"]

DEFAULT_DATA_ROOT = "~/rouser-data"
DEFAULT_CACHE_DIR = "~/.cache/rouser"


def resolve_data_root(data_root: str | Path | None = None) -> Path:
    """The folder holding the real datasets (``NMNIST/``, ``DVSGesture/``, ``SHD/``)."""
    chosen = data_root or os.environ.get("ROUSER_DATA") or DEFAULT_DATA_ROOT
    return Path(chosen).expanduser()


def resolve_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """The folder holding cached binned datasets."""
    chosen = cache_dir or os.environ.get("ROUSER_CACHE") or DEFAULT_CACHE_DIR
    return Path(chosen).expanduser()
