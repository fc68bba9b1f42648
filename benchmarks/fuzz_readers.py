"""Fuzz campaign: generated bad inputs for every dataset reader, the suite parser and ``--set`` parsing.

    python benchmarks/record.py benchmarks/results/fuzz.md -- \\
        python benchmarks/fuzz_readers.py --examples 10000 --seed 0

Each input is a valid fixture with random corruptions (:mod:`gnnrec.testing.corrupt`), seeded by
``--seed`` and its number, so a run repeats exactly. A reader must give a usable split or a
``DataFormatError``; the suite parser and ``--set`` must give a suite / model or a ``ValueError``. Anything
else is *uncaught*, and a temporary or cache file left after an error is *half-written*; the script exits
with status 1 if either count is above 0, printing the first tracebacks.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import tempfile
import traceback
from pathlib import Path

from gnnrec.benchmark import harness
from gnnrec.testing.corrupt import check_reader, corrupt_set_items, corrupt_suite, reader_cases

PARSERS = ("suite", "set")


@dataclasses.dataclass
class Tally:
    inputs: int = 0
    refused: int = 0  # DataFormatError for readers, ValueError for the parsers
    valid: int = 0
    uncaught: int = 0
    half_written: int = 0
    seconds: float = 0.0


def check_suite(rng: random.Random, work: Path) -> tuple[str, str]:
    from gnnrec.benchmark import load_suite
    from gnnrec.benchmark.suite import build_cells

    path = work / "suite.json"
    path.write_bytes(corrupt_suite(rng))
    try:
        build_cells(load_suite(path))
        return "valid", ""
    except ValueError:
        return "error", ""
    except Exception:  # noqa: BLE001 - what the campaign looks for
        return "uncaught", f"{path.read_bytes()!r}\n{traceback.format_exc()}"


def check_set(rng: random.Random, models: dict[str, list[str]]) -> tuple[str, str]:
    from gnnrec.config import parse_set_options
    from gnnrec.models import create_model

    model = rng.choice(sorted(models))
    items = corrupt_set_items(rng, models[model])
    try:
        create_model(model, parse_set_options(items), test_config=rng.random() < 0.5)
        return "valid", ""
    except ValueError:
        return "error", ""
    except Exception:  # noqa: BLE001 - what the campaign looks for
        return "uncaught", f"{model} {items!r}\n{traceback.format_exc()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=10_000, help="bad inputs in all (spread over the targets)")
    harness.add_options(parser, threads=1, seed=0)
    parser.add_argument("--only", nargs="+", metavar="TARGET", help="only these readers / parsers (--set as set)")
    parser.add_argument("--show", type=int, default=3, help="tracebacks of uncaught inputs to print")
    args = parser.parse_args(argv)
    harness.apply_options(args)

    import dataclasses as dc

    from gnnrec.models import available_models, get_model_class

    cases = reader_cases()
    targets = [*cases, *PARSERS] if not args.only else list(args.only)
    unknown = sorted(set(targets) - set(cases) - set(PARSERS))
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; choose from {', '.join([*cases, *PARSERS])}")
    models = {name: [f.name for f in dc.fields(get_model_class(name).config_class)] for name in available_models()}
    tallies = {target: Tally() for target in targets}
    shown = 0
    with harness.timed() as campaign, tempfile.TemporaryDirectory(prefix="gnnrec-fuzz-") as scratch:
        scratch = Path(scratch)
        sources = {}
        for name in targets:
            if name in cases:
                sources[name] = scratch / "valid" / name
                cases[name].write(sources[name])
        for number in range(args.examples):
            target = targets[number % len(targets)]
            rng = random.Random(f"{args.seed}:{target}:{number}")
            tally = tallies[target]
            with harness.timed() as clock:
                if target in cases:
                    outcome = check_reader(cases[target], sources[target], scratch / "work", rng)
                    kind, detail, half = outcome.kind, outcome.detail, outcome.half_written
                elif target == "suite":
                    (scratch / "work").mkdir(exist_ok=True)
                    (kind, detail), half = check_suite(rng, scratch / "work"), []
                else:
                    (kind, detail), half = check_set(rng, models), []
            tally.seconds += clock.seconds
            tally.inputs += 1
            tally.refused += kind == "error"
            tally.valid += kind == "valid"
            tally.uncaught += kind == "uncaught"
            tally.half_written += bool(half)
            if (kind == "uncaught" or half) and shown < args.show:
                shown += 1
                print(f"--- input {number} ({target}): {kind}; half-written {half}\n{detail}", file=sys.stderr)
    total = Tally()
    print(f"fuzz campaign: {args.examples} inputs, seed {args.seed}, {campaign.seconds:.0f} s")
    print()
    print("| target | inputs | refused (DataFormatError / ValueError) | valid | uncaught | half-written | s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for target, tally in tallies.items():
        for field in ("inputs", "refused", "valid", "uncaught", "half_written", "seconds"):
            setattr(total, field, getattr(total, field) + getattr(tally, field))
        print(
            f"| {target} | {tally.inputs} | {tally.refused} | {tally.valid} | {tally.uncaught} | "
            f"{tally.half_written} | {tally.seconds:.0f} |"
        )
    print(
        f"| **all** | {total.inputs} | {total.refused} | {total.valid} | {total.uncaught} | "
        f"{total.half_written} | {total.seconds:.0f} |"
    )
    return 1 if total.uncaught or total.half_written else 0


if __name__ == "__main__":
    sys.exit(main())
