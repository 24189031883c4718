"""The single sign-on platform the end-to-end tests of sign-in and of its attacks run on: a small directory (two
collèges, pupils, a parent with a child in each, a teacher, a collectivité's agent) imported by `maille-identity`,
the EduConnect and académie SAML peers, the GAR peer, the PMB peer, identity, the library and the gateway, on the
session's real Keycloak, NATS and docstore."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from maille_devstack.browser import Browser
from maille_devstack.paths import XMLSEC_BIN, bin_of
from maille_devstack.processes import (
    DocstoreServer,
    GarPeer,
    KeycloakServer,
    NatsServer,
    PmbPeerProcess,
    SamlPeer,
    ServiceProcess,
    free_port,
)

TENANT = "ac-sso"
PASSWORD = "demo-sso"
UAI_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">\n'


def uai(digits: str) -> str:
    return digits + UAI_LETTERS[int(digits) % 23]


SCHOOL_A, SCHOOL_B = uai("0351001"), uai("0351002")


def _record(category: str, ident: str, attrs: dict[str, list[str] | str]) -> str:
    body = "".join(
        f'<attr name="{n}">' + "".join(f"<value>{v}</value>" for v in ([vs] if isinstance(vs, str) else vs)) + "</attr>"
        for n, vs in attrs.items()
    )
    kind = "categorieStructure" if category == "Etablissement" else "categoriePersonne"
    return (
        "<addRequest><operationalAttributes><attr "
        f'name="{kind}"><value>{category}</value></attr></operationalAttributes>'
        f"<identifier><id>{ident}</id></identifier><attributes>{body}</attributes></addRequest>\n"
    )


def write_feed(folder: Path, *, without: tuple[str, ...] = (), teacher_in: tuple[str, ...] = ("900001",)) -> None:
    """Two collèges; a pupil in each whose parent is the same adult (one AAF record per school); a pupil
    to be detached; a teacher; a collectivité's agent."""
    folder.mkdir(parents=True, exist_ok=True)
    kinds = {
        "EtabEducNat": [
            _record(
                "Etablissement",
                "900001",
                {
                    "ENTStructureJointure": "900001",
                    "ENTStructureUAI": SCHOOL_A,
                    "ENTStructureNomCourant": "COLLEGE ANNE DE BRETAGNE",
                    "ENTStructureTypeStruct": "COLLEGE",
                    "ENTStructureClasses": ["6A$6A", "5A$5A"],
                },
            ),
            _record(
                "Etablissement",
                "900002",
                {
                    "ENTStructureJointure": "900002",
                    "ENTStructureUAI": SCHOOL_B,
                    "ENTStructureNomCourant": "COLLEGE DU GUESCLIN",
                    "ENTStructureTypeStruct": "COLLEGE",
                    "ENTStructureClasses": ["4B$4B"],
                },
            ),
        ],
        "Eleve": [
            _record(
                "Eleve",
                "E1",
                {
                    "ENTPersonJointure": "E1",
                    "sn": "MARTIN",
                    "givenName": "Léa",
                    "ENTPersonDateNaissance": "04/09/2014",
                    "ENTEleveStructRattachId": "900001",
                    "ENTEleveClasses": "900001$6A",
                    "ENTEleveMEF": "10010012110",
                    "ENTElevePersRelEleve": "R1$1$1$1$1$0",
                },
            ),
            _record(
                "Eleve",
                "E2",
                {
                    "ENTPersonJointure": "E2",
                    "sn": "MARTIN",
                    "givenName": "Hugo",
                    "ENTPersonDateNaissance": "11/02/2012",
                    "ENTEleveStructRattachId": "900002",
                    "ENTEleveClasses": "900002$4B",
                    "ENTElevePersRelEleve": "R2$1$1$1$1$0",
                },
            ),
            _record(
                "Eleve",
                "E3",
                {
                    "ENTPersonJointure": "E3",
                    "sn": "ROUX",
                    "givenName": "Zoé",
                    "ENTPersonDateNaissance": "01/03/2014",
                    "ENTEleveStructRattachId": "900001",
                    "ENTEleveClasses": "900001$5A",
                },
            ),
        ],
        "PersRelEleve": [
            _record(
                "PersRelEleve",
                "R1",
                {
                    "ENTPersonJointure": "R1",
                    "sn": "MARTIN",
                    "givenName": "Claire",
                    "mobile": "0611223344",
                    "mail": "claire.martin@example.org",
                },
            ),
            _record(
                "PersRelEleve",
                "R2",
                {
                    "ENTPersonJointure": "R2",
                    "sn": "MARTIN",
                    "givenName": "Claire",
                    "mobile": "0611223344",
                    "mail": "claire.martin@example.org",
                },
            ),
        ],
        "PersEducNat": [
            _record(
                "PersEducNat",
                "T1",
                {
                    "ENTPersonJointure": "T1",
                    "sn": "DURAND",
                    "givenName": "Paul",
                    "mail": "paul.durand@ac-test.fr",
                    "ENTPersonStructRattach": "900001",
                    "ENTPersonFonctions": [f"{school}$ENS$ENSEIGNEMENT$L0201$LETTRES" for school in teacher_in],
                    "ENTAuxEnsClassesMatieres": "900001$6A$030201",
                    "PersEducNatPresenceDevantEleves": "O",
                },
            ),
            _record(
                "PersEducNat",
                "C1",
                {
                    "ENTPersonJointure": "C1",
                    "sn": "LEGAL",
                    "givenName": "Anne",
                    "mail": "anne.legal@cd35.example",
                    "ENTPersonStructRattach": "900002",
                    "ENTPersonFonctions": "900002$ETA$AGENT$X$X",
                },
            ),
        ],
    }
    for kind, records in kinds.items():
        kept = [r for r in records if not any(f"<id>{w}</id>" in r for w in without)]
        (folder / f"ENT_0350000A_Complet_{kind}_0001.xml").write_text(
            HEADER + "<ficAlimMENESR>\n" + "".join(kept) + "</ficAlimMENESR>\n"
        )


@dataclass
class Platform:
    keycloak: KeycloakServer
    gateway: str
    identity: ServiceProcess
    gar: GarPeer
    database: str
    env: dict[str, str]
    peers_dir: Path
    xmlsec: str
    pmb: PmbPeerProcess

    def sign_in(
        self, idp: str, username: str, *, browser: Browser | None = None, next_path: str = "/api/identity/v1/me"
    ):
        """A browser signs in at the gateway through `idp`; (browser, where it landed)."""
        browser = browser or Browser()
        page = browser.go(f"{self.gateway}/login", params={"idp": idp, "next": next_path})
        return browser, browser.sign_in_upstream(page, username, PASSWORD)

    def import_feed(self, folder: Path) -> None:
        subprocess.run(
            [str(bin_of("maille-identity")), "import-aaf", str(folder), "--report", str(folder / "report.txt")],
            env={**os.environ, **self.env, "CI": "1"},
            check=True,
            capture_output=True,
        )


def identity_env(
    nats: NatsServer, docstore: DocstoreServer, keycloak: KeycloakServer, database: str, tenant: str = TENANT
) -> dict[str, str]:
    return {
        "MAILLE_IDENTITY_NATS_URL": nats.url,
        "MAILLE_IDENTITY_MONGODB_URL": docstore.url,
        "MAILLE_IDENTITY_DATABASE": database,
        "MAILLE_IDENTITY_TENANT": tenant,
        "MAILLE_IDENTITY_KEYCLOAK_URL": keycloak.url,
        "MAILLE_IDENTITY_AUTH_ISSUER": f"{keycloak.url}/realms/maille",
    }


@contextmanager
def sso_platform(
    work: Path,
    keycloak_server: KeycloakServer,
    docstore_server: DocstoreServer,
    gateway_env: dict[str, str] | None = None,
    tenant: str = TENANT,
    with_messaging: bool = False,
) -> Iterator[Platform]:
    """The platform, started in `work`; stopped on leaving (`gateway_env`: more of the gateway's settings; `tenant`: its
    own, so that its persons, and their accounts in the shared Keycloak, are not another platform's). Its NATS is its
    own: the replicas of identity of another platform on a shared NATS would answer its communication-rule requests
    (one queue group) from another directory."""
    nats_server = NatsServer(
        port=free_port(), store_dir=work / "nats", log_dir=work / "log", name=f"sso-{uuid.uuid4().hex[:6]}"
    )
    nats_server.start()
    database = f"test_sso_{uuid.uuid4().hex[:8]}"
    env = identity_env(nats_server, docstore_server, keycloak_server, database, tenant)
    parts: list = []
    try:
        write_feed(work / "feed")
        subprocess.run(
            [str(bin_of("maille-identity")), "import-aaf", str(work / "feed"), "--report", str(work / "report.txt")],
            env={**os.environ, **env, "CI": "1"},
            check=True,
            capture_output=True,
            timeout=300,
        )
        peers = {}
        for kind in ("educonnect", "academie"):
            peer = SamlPeer.started(
                kind,
                keycloak_url=keycloak_server.url,
                mongodb_url=docstore_server.url,
                database=database,
                work=work,
                parts=parts,
                password=PASSWORD,
            )
            peers[kind] = peer.metadata_url
        gar = GarPeer(port=free_port(), keycloak_url=keycloak_server.url, work_dir=work / "peers", log_dir=work / "log")
        gar.start()
        parts.append(gar)
        gateway_port = free_port()
        public = f"http://localhost:{gateway_port}"
        client_id, secret = f"sso-gateway-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
        # The CDIs' PMB, whose OPACs sign readers in through the realm's OPAC client; the teacher is a reader there.
        opac_client, opac_secret = f"sso-opac-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
        from pymongo import MongoClient

        with MongoClient(docstore_server.url) as mongo:
            teacher = mongo[database]["persons"].find_one({"keys": "T1"})["_id"]
        pmb = PmbPeerProcess(
            port=free_port(),
            databases=[f"cdi{SCHOOL_A}", f"cdi{SCHOOL_B}"],
            log_dir=work / "log",
            env={
                "PEER_READERS": f"{teacher}:DURAND:Paul",
                "PEER_OIDC_ISSUER": f"{keycloak_server.url}/realms/maille",
                "PEER_OIDC_CLIENT_ID": opac_client,
                "PEER_OIDC_CLIENT_SECRET": opac_secret,
            },
        )
        pmb.start()
        parts.append(pmb)
        env |= {
            "MAILLE_IDENTITY_PMB_OPAC_CLIENT_ID": opac_client,
            "MAILLE_IDENTITY_PMB_OPAC_CLIENT_SECRET": opac_secret,
        }
        env |= {
            "MAILLE_IDENTITY_GATEWAY_URL": public,
            "MAILLE_IDENTITY_GATEWAY_CLIENT_ID": client_id,
            "MAILLE_IDENTITY_GATEWAY_CLIENT_SECRET": secret,
            "MAILLE_IDENTITY_EDUCONNECT_METADATA_URL": peers["educonnect"],
            "MAILLE_IDENTITY_ACADEMIE_METADATA_URL": peers["academie"],
            "MAILLE_IDENTITY_GAR_SP_ENTITY_ID": gar.entity_id,
            "MAILLE_IDENTITY_GAR_SP_ACS_URL": gar.acs_url,
            "MAILLE_IDENTITY_GAR_ID_ENT": "ENT-SSO-TEST",
        }
        synced = subprocess.run(
            [str(bin_of("maille-identity")), "sync-keycloak"], env={**os.environ, **env}, capture_output=True, text=True
        )
        assert synced.returncode == 0, synced.stdout + synced.stderr
        identity = ServiceProcess(
            "identity",
            port=free_port(),
            env=env | {"MAILLE_IDENTITY_KEYCLOAK_SYNC_ON_START": "false"},
            log_dir=work / "log",
        )
        identity.start()
        parts.append(identity)

        def service(name: str) -> ServiceProcess:
            """A service of the platform on its own database, started."""
            prefix = f"MAILLE_{name.upper()}_"
            started = ServiceProcess(
                name,
                port=free_port(),
                log_dir=work / "log",
                env={
                    f"{prefix}NATS_URL": nats_server.url,
                    f"{prefix}MONGODB_URL": docstore_server.url,
                    f"{prefix}DATABASE": f"{database}_{name}",
                    f"{prefix}TENANT": tenant,
                    f"{prefix}AUTH_ISSUER": f"{keycloak_server.url}/realms/maille",
                },
            )
            started.start()
            parts.append(started)
            return started

        routes = {"identity": identity.url, "library": service("library").url}
        if with_messaging:
            routes["messaging"] = service("messaging").url
        gateway = ServiceProcess(
            "gateway",
            port=gateway_port,
            log_dir=work / "log",
            env={
                "MAILLE_GATEWAY_NATS_URL": nats_server.url,
                "MAILLE_GATEWAY_AUTH_ISSUER": f"{keycloak_server.url}/realms/maille",
                "MAILLE_GATEWAY_ROUTES": json.dumps(routes),
                "MAILLE_GATEWAY_PUBLIC_URL": public,
                "MAILLE_GATEWAY_OIDC_CLIENT_ID": client_id,
                "MAILLE_GATEWAY_OIDC_CLIENT_SECRET": secret,
                **(gateway_env or {}),
            },
        )
        gateway.start()
        parts.append(gateway)
        yield Platform(
            keycloak=keycloak_server,
            gateway=public,
            identity=identity,
            gar=gar,
            database=database,
            env=env,
            peers_dir=work / "peers",
            xmlsec=str(XMLSEC_BIN),
            pmb=pmb,
        )
    finally:
        for part in reversed(parts):
            part.stop()
        nats_server.stop()
