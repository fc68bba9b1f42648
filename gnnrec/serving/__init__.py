"""Getting recommendations out of a fitted model: files (:mod:`.export`), a service (:mod:`.service`) and its
HTTP application with a web page (:mod:`.app`, needs ``pip install gnnrec[serve]``).

Only the framework-free parts are imported here; :mod:`gnnrec.serving.app` imports FastAPI.
"""

from gnnrec.serving.catalogue import Catalogue, UnknownIdError
from gnnrec.serving.export import embedding_frames, similar_frames, table_format, top_k_frames, write_table
from gnnrec.serving.service import NewPerson, Recommender, ServiceError
from gnnrec.serving.similarity import MovieSimilarity, models_with_embeddings, node_embeddings

__all__ = [
    "Catalogue",
    "MovieSimilarity",
    "NewPerson",
    "Recommender",
    "ServiceError",
    "UnknownIdError",
    "embedding_frames",
    "models_with_embeddings",
    "node_embeddings",
    "similar_frames",
    "table_format",
    "top_k_frames",
    "write_table",
]
