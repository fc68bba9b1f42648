"""``gnnrec export``: every user's top-K, every film's similar films and the node embeddings, as files."""

from __future__ import annotations

import argparse
import sys

from gnnrec.cli.common import load_checkpoint

DEFAULT_OUT = "recommendations.parquet"


def cmd_export(args: argparse.Namespace) -> int:
    from gnnrec.serving.catalogue import Catalogue
    from gnnrec.serving.export import embedding_frames, similar_frames, table_format, top_k_frames, write_table
    from gnnrec.serving.similarity import MovieSimilarity

    out = args.out if args.out or args.similar or args.embeddings else DEFAULT_OUT
    targets = [path for path in (out, args.similar, args.embeddings) if path]
    if len(set(targets)) != len(targets):
        raise ValueError("--out, --similar and --embeddings must name different files")
    for path in targets:  # every name is checked before any time is spent
        table_format(path, args.format)
    if args.chunk_users is not None and args.chunk_users < 1:
        raise ValueError(f"--chunk-users must be at least 1, got {args.chunk_users}")
    model, split = load_checkpoint(args.checkpoint, args)
    catalogue = Catalogue(split)
    progress = not args.quiet
    if out:
        rows = write_table(out, top_k_frames(model, catalogue, args.k, args.chunk_users, progress), args.format)
        print(f"top-{args.k} of {split.num_users} users: {rows} rows -> {out}", file=sys.stderr)
    if args.similar:
        similarity = MovieSimilarity.of(model)
        rows = write_table(args.similar, similar_frames(similarity, catalogue, args.similar_k, progress), args.format)
        print(f"{args.similar_k} similar films ({similarity.method}): {rows} rows -> {args.similar}", file=sys.stderr)
    if args.embeddings:
        rows = write_table(args.embeddings, embedding_frames(model, catalogue), args.format)
        print(f"node embeddings: {rows} rows -> {args.embeddings}", file=sys.stderr)
    return 0
