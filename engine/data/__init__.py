"""Datasets as sparse binned spikes: embedded ones that work offline, and real ones read from local files."""

from .base import SpikeBatch, SpikeDataset, SpikeSplit
from .registry import DATASETS, DatasetError, dataset_names, load_dataset

__all__ = ["DATASETS", "DatasetError", "SpikeBatch", "SpikeDataset", "SpikeSplit", "dataset_names", "load_dataset"]
