"""diascan: inspect difference-image sources and their reliability scores."""

__version__ = "0.1.0"
