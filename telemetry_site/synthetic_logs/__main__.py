"""`python -m telemetry_site.synthetic_logs HOME [--anchor …] [--seed N] [--days N]`."""

import argparse
import json
import sys
from pathlib import Path

from telemetry_site.synthetic_logs import (
    FIXTURE_ANCHOR,
    FIXTURE_DAYS,
    FIXTURE_SEED,
    parse_anchor,
    write_home,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m telemetry_site.synthetic_logs", description=write_home.__doc__
    )
    parser.add_argument("home", type=Path, help="the folder that plays $HOME")
    parser.add_argument(
        "--anchor",
        type=parse_anchor,
        default=FIXTURE_ANCHOR,
        help="'now' for the logs, as YYYY-MM-DDTHH:MM:SSZ (default: the fixture anchor)",
    )
    parser.add_argument("--seed", type=int, default=FIXTURE_SEED)
    parser.add_argument("--days", type=int, default=FIXTURE_DAYS)
    parser.add_argument("--manifest", type=Path, help="also write the manifest to this file")
    args = parser.parse_args(argv)
    try:
        manifest = write_home(args.home, anchor=args.anchor, seed=args.seed, days=args.days)
    except ValueError as error:
        parser.error(str(error))
    text = json.dumps(manifest, indent=2) + "\n"
    if args.manifest:
        args.manifest.write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
