"""GNN fold-in of new users: the training graph's adjacency laid out once against laying it out at every call.

    python benchmarks/bench_fold_in.py RUN_DIR --data-dir ../shared/data/ml-100k [--threads 1]

Loads a fitted GNN run directory (or checkpoint) and folds in one and sixteen new users with ``--support``
liked films each, with and without ``explain``. For every case the two paths run in turn, one call each,
``--rounds`` times: the model as it is (the training graph's adjacency laid out once, the new edges merged
in) and the same fold-in with the training graph laid out again for the call
(:class:`~gnnrec.nn.grown_adjacency.GrownAdjacency` built afresh, which sorts every edge). It checks that both
give the same scores bit for bit and prints each path's median time per call and the ratio. On a shared machine
only the ratio means something.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
from unittest import mock

import torch

from gnnrec.benchmark import harness
from gnnrec.cli.common import load_checkpoint
from gnnrec.models.gnn import GNNModel


def rebuilt_fold_in(model: GNNModel, *args, **kwargs):
    """The fold-in with the training graph's adjacency laid out again for this call (nothing kept)."""
    encoder = (model.members or model.rank_members)[0].encoder

    def fresh(self: GNNModel):
        graph = self.graph
        return encoder.grown_adjacency(graph.edge_index, graph.rating_index, graph.num_users, graph.num_movies)

    with mock.patch.object(GNNModel, "_fold_in_adjacency", fresh):
        return model.fold_in(*args, **kwargs)


def same(a, b) -> bool:
    return all(
        (x is None and y is None) or (x is not None and y is not None and torch.equal(x, y))
        for x, y in ((a.scores, b.scores), (a.ranking, b.ranking), (a.contributions, b.contributions))
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a fitted GNN run directory or checkpoint")
    harness.add_options(parser, data_dir=True, threads=1)
    parser.add_argument("--support", type=int, default=5, help="films each new user liked")
    parser.add_argument("--rounds", type=int, default=30, help="calls of each path per case")
    args = parser.parse_args()
    threads = harness.apply_options(args)
    options = argparse.Namespace(data_dir=args.data_dir, dataset=None, split=None, val_fraction=None, data_seed=None)
    model = load_checkpoint(args.checkpoint, options)[0]
    generator = torch.Generator().manual_seed(0)
    print(f"checkpoint {args.checkpoint}: {model.info.num_users} users, {model.info.num_movies} movies, "
          f"{model.graph.edge_index.size(1)} training edges; {threads} thread(s); "
          f"load average {os.getloadavg()}")  # fmt: skip
    print("| new users | explain | laid out (ms) | rebuilt (ms) | rebuilt / laid out | same scores |")
    print("| ---: | --- | ---: | ---: | ---: | --- |")
    for num_new in (1, 16):
        rows = torch.arange(num_new).repeat_interleave(args.support)
        liked = torch.cat([
            torch.randperm(model.info.num_movies, generator=generator)[: args.support] for _ in range(num_new)
        ])  # fmt: skip
        support, rating = torch.stack([rows, liked]), torch.full((rows.numel(),), 5.0)
        for explain in (False, True):
            request = {"num_new": num_new, "explain": explain}
            paths = {
                "laid out": functools.partial(model.fold_in, "users", support, rating, **request),
                "rebuilt": functools.partial(rebuilt_fold_in, model, "users", support, rating, **request),
            }
            results = {name: call() for name, call in paths.items()}  # warm-up (lays out the training graph)
            times: dict[str, list[float]] = {name: [] for name in paths}
            for _ in range(args.rounds):
                for name, call in paths.items():
                    with harness.timed() as clock:
                        call()
                    times[name].append(clock.seconds)
            new, old = (statistics.median(times[name]) for name in paths)
            print(f"| {num_new} | {explain} | {new * 1e3:.1f} | {old * 1e3:.1f} | {old / new:.2f} | "
                  f"{same(results['laid out'], results['rebuilt'])} |")  # fmt: skip
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
