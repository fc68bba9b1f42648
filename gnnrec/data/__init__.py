"""Rating datasets as PyG heterogeneous graphs."""

from gnnrec.data.base import RatingGraphDataset
from gnnrec.data.csv_ratings import CSVRatings
from gnnrec.data.errors import DataFormatError
from gnnrec.data.graph import FOLLOWS, RATED_BY, RATES, SIMILAR
from gnnrec.data.monti import Douban, Flixster, MontiDataset, RatingScale, YahooMusic
from gnnrec.data.movielens import SPLITS, MovieLens100K
from gnnrec.data.movielens1m import ML1M_SPLITS, MovieLens1M
from gnnrec.data.movielens_large import LARGE_SPLITS, MovieLens10M, MovieLens20M, MovieLens25M
from gnnrec.data.registry import DATASETS, available_datasets, dataset_settings, get_dataset, load_split
from gnnrec.data.split import RatingEdges, RatingSplit
from gnnrec.data.synthetic import SyntheticDataset, generate_ratings

__all__ = [
    "CSVRatings",
    "LARGE_SPLITS",
    "MovieLens10M",
    "MovieLens20M",
    "MovieLens25M",
    "SyntheticDataset",
    "generate_ratings",
    "dataset_settings",
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
    "dataset_settings",
    "get_dataset",
    "load_split",
]
