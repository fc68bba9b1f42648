"""Rating datasets as PyG heterogeneous graphs."""

from gnnrec.data.base import RatingGraphDataset
from gnnrec.data.errors import DataFormatError
from gnnrec.data.graph import RATED_BY, RATES
from gnnrec.data.monti import FOLLOWS, SIMILAR, Douban, Flixster, MontiDataset, RatingScale, YahooMusic
from gnnrec.data.movielens import SPLITS, MovieLens100K
from gnnrec.data.movielens1m import ML1M_SPLITS, MovieLens1M
from gnnrec.data.movielens_large import LARGE_SPLITS, MovieLens10M, MovieLens20M, MovieLens25M
from gnnrec.data.registry import DATASETS, available_datasets, get_dataset
from gnnrec.data.split import RatingEdges, RatingSplit, load_split
from gnnrec.data.synthetic import SyntheticDataset, generate_ratings

__all__ = [
    "LARGE_SPLITS",
    "MovieLens10M",
    "MovieLens20M",
    "MovieLens25M",
    "SyntheticDataset",
    "generate_ratings",
    "DATASETS",
    "DataFormatError",
    "Douban",
    "FOLLOWS",
    "Flixster",
    "ML1M_SPLITS",
    "MontiDataset",
    "MovieLens100K",
    "MovieLens1M",
    "RATED_BY",
    "RATES",
    "RatingEdges",
    "RatingGraphDataset",
    "RatingScale",
    "RatingSplit",
    "SIMILAR",
    "SPLITS",
    "YahooMusic",
    "available_datasets",
    "get_dataset",
    "load_split",
]
