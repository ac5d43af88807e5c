"""Datasets as sparse binned spikes: embedded ones that work offline, and real ones read from local files."""

from .base import SpikeBatch, SpikeDataset, SpikeSplit
from .listing import format_datasets, list_datasets
from .paths import resolve_cache_dir, resolve_data_root
from .registry import DATASET_INFO, DATASETS, DEFAULT_DATASET, DatasetError, dataset_names, load_dataset

__all__ = ["DATASETS", "DATASET_INFO", "DEFAULT_DATASET", "DatasetError", "SpikeBatch", "SpikeDataset", "SpikeSplit",
           "dataset_names", "format_datasets", "list_datasets", "load_dataset", "resolve_cache_dir",
           "resolve_data_root"]
