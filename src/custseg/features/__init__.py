"""Per-customer features as of a date."""

from custseg.features.build import BLOCKS, build_features, default_as_of

__all__ = ["BLOCKS", "build_features", "default_as_of"]
