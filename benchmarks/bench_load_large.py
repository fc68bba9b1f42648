"""Time loading MovieLens-25M-sized data: CSV parse + graph build, then the processed-cache load.

Generates ML-25M-shaped ratings (:func:`gnnrec.data.synthetic.generate_ratings`, default
25,000,095 ratings, 162,541 users, 59,047 movies), writes them in ML-25M's CSV layout
to a temporary directory under ``$GNNREC_HOME`` and loads them with
:class:`gnnrec.data.MovieLens25M`. Targets on a 2-core machine: parse + build ≤ 60 s,
cache load ≤ 10 s. Prints the times and the peak RSS.

    python benchmarks/bench_load_large.py [--num-ratings N --num-users U --num-movies M] [--taste-exposure B]
        [--generate-only] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile

from gnnrec.benchmark import harness
from gnnrec.data.movielens_large import MovieLens25M
from gnnrec.data.synthetic import DEFAULT_TASTE_EXPOSURE, ML25M_SIZE, generate_ratings
from gnnrec.utils import gnnrec_home


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-ratings", type=int, default=ML25M_SIZE["num_ratings"])
    parser.add_argument("--num-users", type=int, default=ML25M_SIZE["num_users"])
    parser.add_argument("--num-movies", type=int, default=ML25M_SIZE["num_movies"])
    parser.add_argument("--split", default="random", choices=["random", "temporal"])
    parser.add_argument("--taste-exposure", type=float, default=DEFAULT_TASTE_EXPOSURE, help="of the generator")
    parser.add_argument("--generate-only", action="store_true", help="stop after generating the ratings")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args(argv)

    home = gnnrec_home()
    home.mkdir(parents=True, exist_ok=True)
    work = tempfile.mkdtemp(prefix="bench-load-large-", dir=home)
    try:
        # wall and CPU seconds: the CPU time shows the cost on a busy shared machine
        with harness.timed() as clock:
            data = generate_ratings(
                args.num_users, args.num_movies, args.num_ratings, seed=0, taste_exposure=args.taste_exposure
            )
        print(
            f"generate {len(data):,} ratings (taste_exposure={args.taste_exposure:g}): {clock} "
            f"(peak RSS {harness.peak_rss_gib():.2f} GiB)",
            flush=True,
        )
        if args.generate_only:
            return
        with harness.timed() as clock:
            data.write_ml25m_csv(f"{work}/src")
            del data
        print(f"write ML-25M CSV: {clock}", flush=True)

        with harness.timed() as clock:
            dataset = MovieLens25M(f"{work}/root", args.split, source_dir=f"{work}/src", log=False)
            graph = dataset[0]
        edges = graph["user", "rates", "movie"]
        print(
            f"parse + graph build ({args.split}): {clock} (target <= 60 s); "
            f"{graph['user'].num_nodes:,} users, {graph['movie'].num_nodes:,} movies, "
            f"{edges.edge_index.size(1):,} train edges; peak RSS {harness.peak_rss_gib():.2f} GiB",
            flush=True,
        )
        del dataset, graph, edges

        with harness.timed() as clock:
            cached = MovieLens25M(f"{work}/root", args.split, source_dir=f"{work}/src", log=False)[0]
        assert cached["user"].num_nodes == args.num_users
        print(f"processed-cache load: {clock} (target <= 10 s)")
        print(f"peak RSS of the whole run: {harness.peak_rss_gib():.2f} GiB")
    finally:
        if args.keep:
            print(f"files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
