"""Cleaning: netting, currencies, outliers, identity, normalised categoricals."""

from custseg.cleaning.clean import CleanTables, clean

__all__ = ["CleanTables", "clean"]
