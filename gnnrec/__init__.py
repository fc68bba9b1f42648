"""gnnrec: graph neural networks for rating prediction and recommendation."""

__version__ = "0.1.0"
