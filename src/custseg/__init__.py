"""custseg: customer segmentation for online stores.

The pipeline: sources -> store -> cleaning -> features -> segmenters.
"""

from custseg.store import Store, open_store

__version__ = "0.1.0"

__all__ = ["Store", "__version__", "open_store"]
