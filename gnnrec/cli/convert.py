"""``gnnrec convert --trust OLD NEW``: a pickle checkpoint of an older gnnrec as a safetensors checkpoint."""

from __future__ import annotations

import argparse


def cmd_convert(args: argparse.Namespace) -> int:
    from gnnrec.models.checkpoint import convert_pickle_checkpoint, read_checkpoint

    if not args.trust:
        raise ValueError(
            f"converting reads {args.old} as a pickle, which can run code; give --trust only if you trust its source"
        )
    new = convert_pickle_checkpoint(args.old, args.new)
    payload = read_checkpoint(new)
    print(f"wrote {new}: a {payload['model']!r} checkpoint trained on {payload['split']['name']}")
    return 0
