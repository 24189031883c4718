"""`maille-identity`: serve the identity service, or run one of its operator commands.

maille-identity                                serve (what `python -m maille_identity` does)
maille-identity import-aaf PATH… [--tenant T] [--report FILE]
maille-identity generate-aaf OUTDIR [--persons N] [--schools N] [--seed N] [--delta N]
maille-identity export-gar OUTDIR [--tenant T] [--push]
maille-identity rgpd-export PERSON_ID [--tenant T] [--out FILE]
maille-identity erase PERSON_ID --yes [--tenant T]
maille-identity sync-keycloak [--check]
maille-identity link-account USERNAME PERSON_ID [--tenant T]
maille-identity clients list | add vendor|operator CLIENT_ID --name NAME | rotate CLIENT_ID | delete CLIENT_ID
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from maille_identity.directory.importer import Summary, import_feeds
from maille_identity.directory.repository import DirectoryRepository
from maille_identity.events import STREAMS, EventBatch
from maille_identity.settings import IdentitySettings
from maille_kit.bus import Bus
from maille_kit.docstore import Docstore
from maille_kit.outbox import Outbox
from maille_kit.settings import load_settings
from maille_kit.work import Works

if TYPE_CHECKING:
    from maille_identity.federation.clients import ApiClients
    from maille_identity.federation.keycloak import Reconciler


def main(argv: list[str] | None = None) -> None:
    """Dispatch to the command asked for; serve when none is."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        from maille_identity.main import main as serve

        serve()
        return
    parser = argparse.ArgumentParser(
        prog="maille-identity", description="The identity service and its operator commands."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    imp = commands.add_parser("import-aaf", help="import AAF feeds (files, folders or .tar.gz) into the directory")
    imp.add_argument("paths", nargs="+", type=Path)
    imp.add_argument("--tenant", help="tenant to import into (default: MAILLE_IDENTITY_TENANT)")
    imp.add_argument("--report", type=Path, help="report file (default: aaf-report-<time>.txt in the current folder)")
    gar = commands.add_parser("export-gar", help="write the GAR directory export (XSD-valid files, .tar.gz, .md5)")
    gar.add_argument("outdir", type=Path)
    gar.add_argument("--tenant", help="tenant to export (default: MAILLE_IDENTITY_TENANT)")
    gar.add_argument(
        "--push", action="store_true", help="then push the .tar.gz and .md5 by SFTP (MAILLE_IDENTITY_GAR_SFTP_*)"
    )
    rgpd = commands.add_parser("rgpd-export", help="everything identity holds on one person, as JSON")
    rgpd.add_argument("person_id")
    rgpd.add_argument("--tenant")
    rgpd.add_argument("--out", type=Path, help="file to write (default: standard output)")
    erase = commands.add_parser("erase", help="erase one person now, everywhere (an event tells every service)")
    erase.add_argument("person_id")
    erase.add_argument("--tenant")
    erase.add_argument("--yes", action="store_true", help="confirm: erasure cannot be undone")
    sync = commands.add_parser(
        "sync-keycloak", help="make the realm maille hold identity/keycloak/maille.json (and the federations)"
    )
    sync.add_argument("--check", action="store_true", help="exit 1 if anything had to be put back (drift)")
    link = commands.add_parser(
        "link-account", help="link a local account of the realm (no upstream IdP) to a directory person"
    )
    link.add_argument("username")
    link.add_argument("person_id")
    link.add_argument("--tenant")
    clients = commands.add_parser("clients", help="API clients (vendors, partner systems): list, add, rotate, delete")
    actions = clients.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="every API client, with its kind, roles, audiences and last use")
    add = actions.add_parser("add", help="make one (its secret printed once)")
    add.add_argument("kind", choices=("vendor", "operator"))
    add.add_argument("client_id")
    add.add_argument("--name", required=True, help="who it is, in words")
    for name, what in (
        ("rotate", "a new secret (printed once); the old one valid for the grace period"),
        ("delete", "withdraw it: its tokens refused from now"),
    ):
        one = actions.add_parser(name, help=what)
        one.add_argument("client_id")
    gen = commands.add_parser("generate-aaf", help="write a synthetic full AAF delivery")
    gen.add_argument("outdir", type=Path)
    gen.add_argument("--persons", type=int, default=1000)
    gen.add_argument("--schools", type=int, default=2)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument(
        "--delta",
        type=int,
        default=0,
        metavar="N",
        help="the same persons (same --seed) as the N-th delta: every one's first name changed",
    )
    gen.add_argument(
        "--shared-parents",
        type=int,
        default=0,
        metavar="N",
        help="N parents of the first school with a child in each next school too (a record in each school's feed)",
    )
    args = parser.parse_args(argv)
    if args.command == "generate-aaf":
        from maille_identity.directory.synthetic import generate

        counts = generate(
            args.outdir,
            persons=args.persons,
            schools=args.schools,
            seed=args.seed,
            delta=args.delta,
            shared_parents=args.shared_parents,
        )
        print(json.dumps(counts))
        return
    if args.command == "sync-keycloak":
        sys.exit(asyncio.run(sync_keycloak(args)))
    if args.command == "clients":
        sys.exit(asyncio.run(clients_command(args)))
    if args.command == "link-account":
        sys.exit(asyncio.run(link_account(args)))
    if args.command == "export-gar":
        sys.exit(asyncio.run(export_gar(args)))
    if args.command in ("rgpd-export", "erase"):
        if args.command == "erase" and not args.yes:
            print("maille-identity: erasure cannot be undone: add --yes to confirm", file=sys.stderr)
            sys.exit(2)
        sys.exit(asyncio.run(rgpd_command(args)))
    sys.exit(asyncio.run(import_aaf(args)))


async def clients_command(args: argparse.Namespace) -> int:
    """`maille-identity clients …`, as the operators' API does it; 0 done, 1 refused, 2 cannot run."""
    import re

    from maille_identity.api.clients import CLIENT_ID
    from maille_identity.federation.clients import ApiClients

    settings = keycloak_settings()
    if getattr(args, "client_id", None) and not re.match(CLIENT_ID, args.client_id):
        print(
            f"maille-identity: {args.client_id!r} is not a client id (lower case, digits, -; 3 to 63)", file=sys.stderr
        )
        return 1
    who = f"cli:{os.environ.get('USER', 'operator')}"
    async with keycloak_command(settings, "clients") as (docstore, keycloak):
        clients = ApiClients(
            docstore,
            keycloak,
            grace_seconds=settings.api_client_grace_seconds,
            token_url=f"{settings.auth_issuer.rstrip('/')}/protocol/openid-connect/token",
        )
        return await _clients_action(args, clients, who)


async def _clients_action(args: argparse.Namespace, clients: ApiClients, who: str) -> int:
    from maille_identity.federation.clients import KINDS
    from maille_identity.federation.keycloak import KeycloakUnavailable

    try:
        if args.action == "list":
            for doc in await clients.all():
                used = doc["last_used_at"].isoformat(timespec="seconds") if doc["last_used_at"] else "never"
                roles = ",".join(KINDS[doc["kind"]].roles)
                print(f"{doc['_id']:<32} {doc['kind']:<9} {roles:<10} last used {used:<25} {doc['name']}")
            return 0
        known = await clients.get(args.client_id)
        if args.action == "add":
            if known is not None or args.client_id.startswith("maille-"):
                print(f"maille-identity: an API client {args.client_id} exists already", file=sys.stderr)
                return 1
            _, secret = await clients.create(args.client_id, kind=args.kind, name=args.name, by=who)
            print(f"client {args.client_id} made ({args.kind}); its secret, shown once:\n{secret}")
            print(f"tokens: POST {clients.token_url} (grant_type=client_credentials)")
            return 0
        if known is None:
            print(f"maille-identity: no API client {args.client_id}", file=sys.stderr)
            return 1
        if args.action == "rotate":
            _, secret, until = await clients.rotate(args.client_id, by=who)
            print(f"new secret of {args.client_id}, shown once:\n{secret}")
            print(f"the previous one stays valid until {until.isoformat(timespec='seconds')}")
            return 0
        await clients.delete(args.client_id, by=who)
        print(f"client {args.client_id} withdrawn: its tokens are refused from now")
        return 0
    except KeycloakUnavailable as exc:
        print(f"maille-identity: {exc}", file=sys.stderr)
        return 2


async def sync_keycloak(args: argparse.Namespace) -> int:
    """Reconcile the realm: prints each difference put back; 0 done (with --check: 0 only if none), 2 cannot run."""
    from maille_identity.federation.keycloak import KeycloakUnavailable
    from maille_identity.federation.repository import FederationRepository
    from maille_identity.federation.service import Federation

    settings = load_settings(IdentitySettings)
    if not settings.keycloak_url:
        print("maille-identity: set MAILLE_IDENTITY_KEYCLOAK_URL (Keycloak as identity reaches it)", file=sys.stderr)
        return 2
    docstore = Docstore.for_command(settings, "keycloak")
    federation = Federation(settings, FederationRepository(docstore, settings.secret_box()))
    try:
        await docstore.detect()
        report = await federation.sync()
    except KeycloakUnavailable as exc:
        print(f"maille-identity: sync-keycloak failed: {exc}", file=sys.stderr)
        return 2
    finally:
        await federation.keycloak.close()
        await docstore.close()
    for change in report.changes:
        print(f"put back: {change}")
    print(
        f"realm maille: {len(report.changes)} difference(s) put back"
        if report.changes
        else "realm maille: as declared, nothing to change"
    )
    return 1 if args.check and report.changes else 0


async def link_account(args: argparse.Namespace) -> int:
    """Link a local account to a person: the link recorded, the person's facts written on the account; 0 done,
    1 refused (no such account or person), 2 cannot run."""
    from maille_identity.federation.keycloak import KeycloakUnavailable
    from maille_identity.federation.linking import Linking
    from maille_identity.federation.repository import FederationRepository
    from maille_kit.problems import Problem

    settings = keycloak_settings()
    async with keycloak_command(settings, "link-account") as (docstore, keycloak):
        linking = Linking(
            DirectoryRepository(docstore),
            FederationRepository(docstore, settings.secret_box()),
            keycloak,
            tenant=args.tenant or settings.tenant,
            id_secret=settings.person_id_key.get_secret_value().encode(),
            default_id_ent=settings.gar_id_ent,
        )
        try:
            user_id = await keycloak.user_id(args.username)
            if user_id is None:
                print(f"maille-identity: no account {args.username} in the realm", file=sys.stderr)
                return 1
            await linking.link_local(user_id, args.person_id)
        except Problem as exc:
            print(f"maille-identity: {args.person_id} cannot be linked: {exc}", file=sys.stderr)
            return 1
        except KeycloakUnavailable as exc:
            print(f"maille-identity: link-account failed: {exc}", file=sys.stderr)
            return 2
    print(f"account {args.username} linked to {args.person_id}")
    return 0


async def rgpd_command(args: argparse.Namespace) -> int:
    """Export or erase one person: 0 done, 1 no such person, 2 cannot run."""
    from maille_identity.directory.rgpd import NoSuchPerson, erase_person, export_person

    settings = load_settings(IdentitySettings)
    tenant = args.tenant or settings.tenant
    docstore = Docstore.for_command(settings, "rgpd")
    bus = Bus.of(settings, name="maille-identity-rgpd")
    try:
        await docstore.detect()
        repository = DirectoryRepository(docstore)
        if args.command == "rgpd-export":
            text = json.dumps(
                await export_person(repository, tenant=tenant, person_id=args.person_id), ensure_ascii=False, indent=2
            )
            if args.out:
                args.out.write_text(text + "\n", encoding="utf-8")
            else:
                print(text)
            return 0
        await bus.connect(timeout=settings.nats_connect_timeout)
        await bus.ensure_streams(list(STREAMS))
        outbox = Outbox(docstore, bus, source="identity")
        outbox.start()
        await erase_person(
            repository,
            EventBatch(Works(docstore, outbox, source="identity"), tenant=tenant),
            tenant=tenant,
            person_id=args.person_id,
        )
        await outbox.stop(drain_timeout=30)
        print(f"erased {args.person_id}; identity.person.deleted.v1 (erased) published to every service")
        return 0
    except NoSuchPerson:
        print(f"maille-identity: no person {args.person_id!r} in tenant {tenant!r}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"maille-identity: {args.command} failed: {exc}", file=sys.stderr)
        return 2
    finally:
        await bus.close()
        await docstore.close()


async def export_gar(args: argparse.Namespace) -> int:
    """Export (and push): 0 done; 1 a file failed the XSD (none kept); 2 cannot run; 3 the push failed."""
    from maille_identity.gar.export import GarExport, InvalidExport
    from maille_identity.gar.push import PushError, push

    settings = load_settings(IdentitySettings)
    target = settings.sftp_target()
    if args.push and target is None:
        print(
            "maille-identity: --push needs MAILLE_IDENTITY_GAR_SFTP_HOST (and user, key, known hosts)", file=sys.stderr
        )
        return 2
    docstore = Docstore.for_command(settings, "gar")
    try:
        await docstore.detect()
        repository, tenant = DirectoryRepository(docstore), args.tenant or settings.tenant
        declared = await repository.tenant(tenant)
        id_ent = declared["gar_id_ent"] if declared else settings.gar_id_ent
        export = GarExport(repository, tenant=tenant, id_ent=id_ent, outdir=args.outdir)
        report = await export.run()
    except InvalidExport as exc:
        print(f"maille-identity: GAR export refused: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"maille-identity: GAR export failed: {exc}", file=sys.stderr)
        return 2
    finally:
        await docstore.close()
    counts = ", ".join(f"{count:,} {kind}" for kind, count in sorted(report.records.items()))
    print(f"{len(report.files)} files ({counts}), each valid against GAR-ENT.xsd: {report.archive} (md5 {report.md5})")
    for line in report.left_out:
        print(f"left out: {line}")
    if args.push and target is not None and report.archive is not None:
        try:
            for remote in await push(target, [report.archive, Path(f"{report.archive}.md5")]):
                print(f"pushed {remote} to {target.host}")
        except PushError as exc:
            print(f"maille-identity: {exc}", file=sys.stderr)
            return 3
    return 0


def keycloak_settings() -> IdentitySettings:
    """identity's settings for a command that talks to Keycloak; exit 2, saying why, when Keycloak is not named."""
    settings = load_settings(IdentitySettings)
    if not settings.keycloak_url:
        print("maille-identity: set MAILLE_IDENTITY_KEYCLOAK_URL (Keycloak as identity reaches it)", file=sys.stderr)
        raise SystemExit(2)
    return settings


@asynccontextmanager
async def keycloak_command(settings: IdentitySettings, command: str) -> AsyncIterator[tuple[Docstore, Reconciler]]:
    """identity's database and Keycloak's admin API for an operator command, both closed at the end."""
    docstore = Docstore.for_command(settings, command)
    keycloak = reconciler(settings)
    try:
        await docstore.detect()
        yield docstore, keycloak
    finally:
        await keycloak.close()
        await docstore.close()


def reconciler(settings: IdentitySettings) -> Reconciler:
    """Keycloak's admin API as identity's own client (an operator command's, for the realm maille)."""
    from maille_identity.federation.keycloak import Reconciler

    assert settings.keycloak_url
    return Reconciler(
        server_url=settings.keycloak_url,
        client_id=settings.keycloak_client_id,
        client_secret=settings.keycloak_client_secret.get_secret_value(),
    )


class Progress:
    """A progress line that rewrites itself on a terminal, and plain lines elsewhere (CI, logs)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty() and os.environ.get("CI") is None
        self._last_file: str | None = None

    def __call__(self, file: str, records: int) -> None:
        if self.tty:
            print(f"\r{Path(file).name}: {records:,} records", end="", file=sys.stderr, flush=True)
        elif file != self._last_file:
            self._last_file = file
            print(f"reading {file}", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.tty:
            print(file=sys.stderr)


async def import_aaf(args: argparse.Namespace) -> int:
    """Import; exit 0 when the feed was processed (refused records are in the report), 1 when it was not."""
    settings = load_settings(IdentitySettings)
    os.nice(settings.import_nice)  # the people using the platform meanwhile go first
    tenant = args.tenant or settings.tenant
    report = args.report or Path(f"aaf-report-{tenant}.txt")
    docstore = Docstore.for_command(settings, "import")
    bus = Bus.of(settings, name="maille-identity-import")
    try:
        await docstore.detect()
    except Exception as exc:
        print(f"maille-identity: the docstore at {docstore.url} is unreachable: {exc}", file=sys.stderr)
        return 2
    outbox = Outbox(docstore, bus, source="identity")
    try:
        await bus.connect(timeout=settings.nats_connect_timeout)
        await bus.ensure_streams(list(STREAMS))
        outbox.start()
    except Exception as exc:  # the events wait in the outbox; the identity service relays them
        print(
            f"maille-identity: NATS unreachable ({exc}); events stay in the outbox until the identity service relays "
            "them",
            file=sys.stderr,
        )
    progress = Progress()
    summary = await import_feeds(
        DirectoryRepository(docstore),
        EventBatch(Works(docstore, outbox, source="identity"), tenant=tenant),
        args.paths,
        tenant=tenant,
        check_uai_letter=settings.check_uai_letter,
        id_secret=settings.person_id_key.get_secret_value().encode(),
        report_path=report,
        grace=timedelta(days=settings.detach_grace_days),
        progress=progress,
    )
    progress.done()
    await outbox.stop(drain_timeout=60)
    await bus.close()
    await docstore.close()
    print_summary(summary, report)
    return 0 if summary.processed else 1


def print_summary(summary: Summary, report: Path) -> None:
    s = summary
    print(
        f"{s.files} files, {s.records:,} records in {s.seconds:.1f}s: {s.created:,} created, {s.updated:,} updated, "
        f"{s.unchanged:,} unchanged, {s.deleted:,} deleted, {s.detached:,} detached; {s.rejected:,} rejected, "
        f"{s.warnings:,} warnings; {s.events:,} events"
    )
    if s.unreadable:
        print(f"unreadable to the end: {', '.join(s.unreadable)}")
    if s.rejected or s.warnings or s.ignored:
        print(f"report: {report}")
