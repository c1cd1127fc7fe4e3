"""stagevote: the backend of a live event voting platform."""

__version__ = "0.1.0"
