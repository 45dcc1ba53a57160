"""Data layer: importers, engagement labels, splits, preference pairs, synthetic sample."""
