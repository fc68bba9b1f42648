"""Rating datasets as PyG heterogeneous graphs."""

from gnnrec.data.errors import DataFormatError
from gnnrec.data.graph import RATED_BY, RATES
from gnnrec.data.movielens import SPLITS, MovieLens100K
from gnnrec.data.registry import DATASETS, get_dataset
from gnnrec.data.split import RatingEdges, RatingSplit, load_split

__all__ = [
    "DATASETS",
    "DataFormatError",
    "MovieLens100K",
    "RATED_BY",
    "RATES",
    "RatingEdges",
    "RatingSplit",
    "SPLITS",
    "get_dataset",
    "load_split",
]
