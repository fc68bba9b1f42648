"""Graph neural network layers of gnnrec."""

from gnnrec.nn.conv import BipartiteRatingConv, RatingConv
from gnnrec.nn.kernel import GlobalKernel, KernelLayer, local_kernel

__all__ = ["BipartiteRatingConv", "GlobalKernel", "KernelLayer", "RatingConv", "local_kernel"]
