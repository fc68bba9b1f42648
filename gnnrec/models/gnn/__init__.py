"""gnnrec's rating-aware graph neural network, the ``gnn`` model.

``model`` (:class:`GNNModel`), ``config`` (:class:`GNNConfig`), ``presets`` (per-dataset defaults), ``graph``
(the graph a fitted model keeps), ``network`` (the network a config describes), ``step`` (the one training
step and the epochs made of it) and ``training`` (:class:`~gnnrec.models.gnn.training.GNNTrainer`).
"""

from gnnrec.models.gnn.config import GNNConfig
from gnnrec.models.gnn.model import GNNModel

__all__ = ["GNNConfig", "GNNModel"]
