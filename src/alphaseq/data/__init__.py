"""Price panels: the dense array container, loaders and built-in data sets."""

from alphaseq.data.datasets import DATASETS, load_dataset
from alphaseq.data.loaders import load_panel
from alphaseq.data.panel import FIELDS, Panel, Repair

__all__ = ["DATASETS", "FIELDS", "Panel", "Repair", "load_dataset", "load_panel"]
