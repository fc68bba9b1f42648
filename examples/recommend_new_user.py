"""Recommend movies to a person who is not in the data (cold start), without retraining the GNN.

    python examples/recommend_new_user.py --age 25 --gender F --occupation student --liked 50 172 181:4
    python examples/recommend_new_user.py --checkpoint runs/gnn/model.safetensors \\
        --age 40 --gender M --occupation engineer

Movie ids are the raw MovieLens ids of u.item (50, 172 and 181 are the Star Wars trilogy in ML-100k).
Without --checkpoint the GNN is trained first (--fast: its tiny test configuration).
"""

from __future__ import annotations

import argparse

from gnnrec.coldstart import movie_indices_from_raw_ids
from gnnrec.config import parse_set_options
from gnnrec.data import MovieLens100K
from gnnrec.models import RatingModel, create_model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Top-k movies for a new person from demographics and a few ratings.")
    parser.add_argument("--data-dir", help="raw MovieLens-100k files (default: $GNNREC_ML100K_DIR, else download)")
    parser.add_argument("--checkpoint", help="a saved gnn model (model.safetensors); default: train one now")
    parser.add_argument("--age", type=float, default=25)
    parser.add_argument("--gender", default="F", help="M or F")
    parser.add_argument("--occupation", default="student")
    parser.add_argument("--liked", nargs="*", default=["50", "172", "181:4"], metavar="ID[:RATING]")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--fast", action="store_true", help="train with the tiny test configuration")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="GNN config override")
    args = parser.parse_args(argv)

    split = MovieLens100K(split="u1", source_dir=args.data_dir).rating_split()
    if args.checkpoint:
        model = RatingModel.load(args.checkpoint, split)
    else:
        model = create_model("gnn", parse_set_options(args.set), test_config=args.fast).fit(split)

    movie = split.graph["movie"]
    pairs = [item.partition(":") for item in args.liked]
    indices = movie_indices_from_raw_ids([raw for raw, _, _ in pairs], movie.raw_id)
    ratings = [
        (index, float(value) if value else split.rating_max)
        for index, (_, _, value) in zip(indices, pairs, strict=True)
    ]
    for index, rating in ratings:
        print(f"rated {rating:g}: {movie.title[index]}")

    top, predicted = model.recommend_new_user(
        age=args.age, gender=args.gender, occupation=args.occupation, ratings=ratings, k=args.k
    )
    genre_names = split.graph.genre_names
    print(f"\ntop {args.k} for a {args.age:g}-year-old {args.gender} {args.occupation}:")
    for rank, (index, score) in enumerate(zip(top.tolist(), predicted.tolist(), strict=True), start=1):
        genres = ", ".join(genre_names[j] for j in movie.genre[index].nonzero().view(-1).tolist())
        print(f"{rank:>3}. {score:.2f}  {movie.title[index]}  [{genres}]")


if __name__ == "__main__":
    main()
