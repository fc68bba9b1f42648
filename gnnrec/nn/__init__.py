"""Graph neural network layers of gnnrec."""

from gnnrec.nn.conv import BipartiteRatingConv, RatingConv
from gnnrec.nn.decoders import BilinearDecoder, DotDecoder, MLPDecoder
from gnnrec.nn.encoder import RatingGraphEncoder
from gnnrec.nn.kernel import GlobalKernel, KernelLayer, local_kernel
from gnnrec.nn.ranking import RankingHead
from gnnrec.nn.side_conv import SideGraphConv

__all__ = [
    "BilinearDecoder",
    "BipartiteRatingConv",
    "DotDecoder",
    "GlobalKernel",
    "KernelLayer",
    "MLPDecoder",
    "RankingHead",
    "RatingConv",
    "RatingGraphEncoder",
    "SideGraphConv",
    "local_kernel",
]
