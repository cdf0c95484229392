"""collectwatch: supervision statistics for the debt-collection industry."""

__version__ = "0.1.0"
