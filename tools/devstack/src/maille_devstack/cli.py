"""`maille-devstack run | stop | config-table`."""

from __future__ import annotations

import argparse
import sys

from maille_devstack.paths import MissingPart


def main(argv: list[str] | None = None) -> int:
    """The devstack's command line."""
    parser = argparse.ArgumentParser(prog="maille-devstack", description="Maille's real parts on one machine.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start the whole platform in the foreground (make run)")
    commands.add_parser("stop", help="stop a platform started by run (make stop)")
    commands.add_parser("config-table", help="print the configuration variables as the README's Markdown tables")
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            from maille_devstack.stack import run

            return run()
        if args.command == "stop":
            from maille_devstack.stack import stop_running

            return stop_running()
        from maille_devstack.configdoc import config_tables

        print(config_tables())
        return 0
    except MissingPart as exc:
        print(f"maille-devstack: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
