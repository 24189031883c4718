"""`maille-devstack run | stop | env SERVICE | config-table`."""

from __future__ import annotations

import argparse
import sys

from maille_devstack.paths import MissingPart
from maille_devstack.processes import NotReady


def main(argv: list[str] | None = None) -> int:
    """The devstack's command line."""
    parser = argparse.ArgumentParser(prog="maille-devstack", description="Maille's real parts on one machine.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start the whole platform in the foreground (make run)")
    commands.add_parser("stop", help="stop a platform started by run (make stop)")
    commands.add_parser("seed", help="seed the demo data into a running platform (compose's seed job)")
    pki = commands.add_parser("pki", help="make the demo PKI (the GAR peer's and the ENT's certificates) in FOLDER")
    pki.add_argument("folder")
    env = commands.add_parser("env", help="print the exports a command of SERVICE needs against make run's platform")
    env.add_argument(
        "service",
        choices=("gateway", "identity", "catalog", "messaging", "library", "timeline", "support", "observatory"),
    )
    table = commands.add_parser(
        "config-table", help="print the configuration variables as docs/configuration.md's tables"
    )
    table.add_argument("--write", action="store_true", help="write them into docs/configuration.md instead")
    args = parser.parse_args(argv)
    try:
        if args.command == "env":
            import shlex

            from maille_devstack.stack import command_env

            for name, value in command_env(args.service).items():
                print(f"export {name}={shlex.quote(value)}")
            return 0
        if args.command == "run":
            from maille_devstack.stack import run

            return run()
        if args.command == "seed":
            from maille_devstack.seed import from_environment

            return from_environment()
        if args.command == "pki":
            from pathlib import Path

            from maille_devstack.pki import make_pki

            made = make_pki(Path(args.folder))
            print(f"PKI in {args.folder}: {', '.join(Path(p).name for p in vars(made).values())}")
            return 0
        if args.command == "stop":
            from maille_devstack.stack import stop_running

            return stop_running()
        from maille_devstack.configdoc import config_tables, write_config_page

        if args.write:
            print(f"wrote {write_config_page()}")
        else:
            print(config_tables())
        return 0
    except (MissingPart, NotReady) as exc:
        print(f"maille-devstack: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
