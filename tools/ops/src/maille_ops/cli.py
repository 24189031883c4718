"""maille-ops — for what Helm does not do.

    maille-ops status
        every Maille workload: ready replicas, up to date, images (exit 1 if one is not ready)
    maille-ops restart [NAME…] [--wait]
        roll the pods of these Deployments (all of Maille's without a name), one by one — after a key or realm
        rotation: they read their Secrets and the realm's keys again
    maille-ops run gar-export|aaf-import [--wait]
        the nightly GAR export, or the AAF import of the inbox, now (a Job from its CronJob)
    maille-ops deadletters list [SERVICE…] | show SERVICE NUMBER | replay SERVICE (NUMBER…|--all)
                           | drop SERVICE (NUMBER…|--all)
        the events the services' consumers set aside: read them, replay them to the consumer that failed, or drop
        them (through NATS, as the user `ops`: maille_ops/letters.py says how it connects)

Options: -n/--namespace (default maille), --context (a kube context; default the current one, or in-cluster).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from maille_kit.deadletters import NoSuchLetter
from maille_ops import letters
from maille_ops.letters import SERVICES
from maille_ops.ops import JOBS, Cluster, OpsError, table


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="maille-ops", description="Maille's operator commands on Kubernetes (what Helm does not do)."
    )
    p.add_argument("-n", "--namespace", default="maille", help="the release's namespace (default maille)")
    p.add_argument("--context", help="kube context (default: the current one, else in-cluster)")
    commands = p.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="every Maille workload: ready replicas, up to date, images")
    restart = commands.add_parser("restart", help="roll Deployments' pods one by one (after a key or realm rotation)")
    restart.add_argument("names", nargs="*", help="Deployments (maille-gateway or gateway…); none: all of Maille's")
    restart.add_argument("--wait", action="store_true", help="until every pod is replaced and ready")
    run = commands.add_parser("run", help="start a job now from its CronJob")
    run.add_argument("job", choices=sorted(JOBS))
    run.add_argument("--wait", action="store_true", help="until it finishes (exit 1 if it fails)")
    letters = commands.add_parser("deadletters", help="the services' dead letters: list, show, replay, drop")
    letters.add_argument(
        "--nats-url",
        default=os.environ.get("MAILLE_OPS_NATS_URL", "nats://127.0.0.1:4222"),
        help="NATS as you reach it (default $MAILLE_OPS_NATS_URL or nats://127.0.0.1:4222)",
    )
    actions = letters.add_subparsers(dest="action", required=True)
    listed = actions.add_parser("list", help="every dead letter (of these services)")
    listed.add_argument("services", nargs="*", choices=[*SERVICES, []], metavar="SERVICE", help=", ".join(SERVICES))
    show = actions.add_parser("show", help="one dead letter: why, for which consumer, which event")
    show.add_argument("service", choices=SERVICES)
    show.add_argument("number", type=int)
    for name, what in (("replay", "publish again for the consumer that failed"), ("drop", "delete for good")):
        act = actions.add_parser(name, help=what)
        act.add_argument("service", choices=SERVICES)
        act.add_argument("numbers", nargs="*", type=int, metavar="NUMBER")
        act.add_argument("--all", action="store_true", help="every dead letter of the service")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.command == "deadletters":
        try:
            sys.exit(asyncio.run(letters.run(args)))
        except (NoSuchLetter, ValueError) as exc:
            print(f"maille-ops: {exc}", file=sys.stderr)
            sys.exit(1)
        except Exception as exc:  # NATS unreachable, a permission refused
            print(f"maille-ops: NATS at {args.nats_url}: {type(exc).__name__}: {str(exc)[:300]}", file=sys.stderr)
            sys.exit(2)
    try:
        cluster = Cluster(args.namespace, context=args.context)
        if args.command == "status":
            workloads = cluster.workloads()
            if not workloads:
                raise OpsError(f"no Maille workload in namespace {args.namespace}")
            print(table(workloads))
            sys.exit(0 if all(w.healthy for w in workloads) else 1)
        if args.command == "restart":
            rolled = cluster.restart(args.names)
            print(f"rolling: {', '.join(rolled)}")
            if args.wait:
                cluster.wait_rolled(rolled)
                print("every pod replaced and ready")
        elif args.command == "run":
            name = cluster.run(args.job)
            print(f"job {name} started")
            if args.wait:
                print(f"job {name} {cluster.wait_job(name)}")
    except OpsError as exc:
        print(f"maille-ops: {exc}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:  # the API refused, or no cluster configured
        print(f"maille-ops: {type(exc).__name__}: {str(exc)[:500]}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
