"""Recommend movies to a person who is not in the data (cold start), without retraining, and say why.

    python examples/recommend_new_user.py --age 25 --gender F --occupation student \\
        --liked "Star Wars" "empire strikes back" "Return of the Jedi:4" --disliked Speed
    python examples/recommend_new_user.py --checkpoint runs/gnn/model.safetensors \\
        --age 40 --gender M --occupation engineer --liked 50 172

A film is a title (any case or accents, year optional) or a raw MovieLens id of u.item; ``:N`` gives its
rating (default: the top of the scale for --liked, the bottom for --disliked). Each recommended film comes
with the films of yours that raise its score most (``FoldIn.explain``). Without --checkpoint the GNN is
trained first, with cold-start training (``COLDSTART_TRAINING``; --fast: its tiny test configuration).
"""

from __future__ import annotations

import argparse

import torch

from gnnrec.config import parse_set_options
from gnnrec.data import MovieLens100K
from gnnrec.data.titles import natural_title
from gnnrec.models import RatingModel, create_model
from gnnrec.models.gnn.presets import COLDSTART_TRAINING
from gnnrec.serving import Catalogue


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Top-k movies for a new person from demographics and a few ratings.")
    parser.add_argument("--data-dir", help="raw MovieLens-100k files (default: $GNNREC_ML100K_DIR, else download)")
    parser.add_argument("--checkpoint", help="a saved model that folds in users (model.safetensors); default: a gnn")
    parser.add_argument("--age", type=float, default=25)
    parser.add_argument("--gender", default="F", help="M or F")
    parser.add_argument("--occupation", default="student")
    parser.add_argument("--liked", nargs="*", default=["Star Wars", "Empire Strikes Back"], metavar="FILM[:RATING]")
    parser.add_argument("--disliked", nargs="*", default=[], metavar="FILM[:RATING]")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--fast", action="store_true", help="train with the tiny test configuration")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="GNN config override")
    args = parser.parse_args(argv)

    split = MovieLens100K(split="u1", source_dir=args.data_dir).rating_split()
    catalogue = Catalogue(split)
    rated = []
    for items, default in ((args.liked, split.rating_max), (args.disliked, split.rating_min)):
        for item in items:
            film, sep, value = item.rpartition(":")
            film, rating = (film, float(value)) if sep and value.isdigit() else (item, default)
            index = catalogue.movie_index(int(film)) if film.isdigit() else catalogue.title_index.resolve(film).index
            rated.append((index, rating))
            print(f"rated {rating:g}: {catalogue.label(index)}")

    if args.checkpoint:
        model = RatingModel.load(args.checkpoint, split)
    else:
        # trained for newcomers, as `gnnrec recommend` does: the cold-start suite's induction
        overrides = {**COLDSTART_TRAINING, **parse_set_options(args.set)}
        model = create_model("gnn", overrides, test_config=args.fast).fit(split)
    features = split.user_layout.encode(age=args.age, gender=args.gender, occupation=args.occupation).view(1, -1)
    support = torch.tensor([[0] * len(rated), [index for index, _ in rated]], dtype=torch.long)
    ratings = torch.tensor([rating for _, rating in rated])
    fold = model.fold_in("users", support, ratings, num_new=1, features=features, explain=True)
    top = fold.top_k(args.k)[0]
    predicted = fold.predict(torch.zeros_like(top), top)
    reasons = fold.explain(0, top, [natural_title(catalogue.label(i)) for i in range(split.num_movies)])

    print(f"\ntop {args.k} for a {args.age:g}-year-old {args.gender} {args.occupation}:")
    for rank, (index, score, reason) in enumerate(zip(top.tolist(), predicted.tolist(), reasons, strict=True), 1):
        print(f"{rank:>3}. {score:.2f}  {catalogue.label(index)}  [{', '.join(catalogue.genres[index])}]")
        print(f"       {reason}")


if __name__ == "__main__":
    main()
