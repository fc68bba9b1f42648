"""Writers of small synthetic datasets in the real file formats, for tests, examples and demos."""

from gnnrec.testing.csv_ratings import CSV_FILES, write_csv_fixture
from gnnrec.testing.ml1m_monti import monti_fixture_arrays, write_mat_v73, write_ml1m_fixture, write_monti_fixture
from gnnrec.testing.ml100k import write_ml100k_fixture
from gnnrec.testing.side_graphs import side_graph_split, write_side_graph_fixture

__all__ = [
    "CSV_FILES",
    "monti_fixture_arrays",
    "side_graph_split",
    "write_csv_fixture",
    "write_mat_v73",
    "write_ml100k_fixture",
    "write_ml1m_fixture",
    "write_monti_fixture",
    "write_side_graph_fixture",
]
