"""``gnnrec serve``: the recommendation service and its web page for one checkpoint."""

from __future__ import annotations

import argparse
import importlib.util
import sys

from gnnrec.cli.common import load_checkpoint

SERVE_PACKAGES = ("fastapi", "uvicorn")


def cmd_serve(args: argparse.Namespace) -> int:
    missing = [name for name in SERVE_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise ValueError(f"serving needs {' and '.join(missing)}: pip install gnnrec[serve]")
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must lie in 0..65535, got {args.port}")
    import uvicorn

    from gnnrec.serving.app import create_app
    from gnnrec.serving.service import Recommender

    model, split = load_checkpoint(args.checkpoint, args)
    recommender = Recommender(model, split)
    print(
        f"serving {model.name} on {split.name} at http://{args.host}:{args.port}/ (API docs: /docs); Ctrl-C stops",
        file=sys.stderr,
    )
    try:
        uvicorn.run(
            create_app(recommender),
            host=args.host,
            port=args.port,
            access_log=not args.quiet,
            log_level="warning" if args.quiet else "info",
        )
    finally:
        recommender.close()
    return 0
