"""The demo platform's data, as `make run` and `docker compose up` both seed it: a small synthetic AAF directory
imported into identity, the demo users of the realm linked to their directory entries, each demo school's CDI
registered with the library. Each step is what an operator would do — identity's commands, Keycloak's admin API,
the library's operator API through the gateway — and is skipped when already done.

`maille-devstack seed` runs them from the environment (compose's seed job): identity's own variables
(MAILLE_IDENTITY_*), and MAILLE_SEED_KEYCLOAK_URL, MAILLE_SEED_GATEWAY_URL, MAILLE_SEED_PMB_URL (as the library
reaches PMB), MAILLE_SEED_PMB_OPAC_URL (as browsers do), MAILLE_SEED_DIR, KEYCLOAK_ADMIN and
KEYCLOAK_ADMIN_PASSWORD, MAILLE_DEMO_PASSWORD.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from maille_devstack.keycloak_admin import admin_client, ensure_service_client, ensure_user
from maille_devstack.paths import bin_of
from maille_devstack.processes import NotReady

Echo = Callable[[str], None]


def seed_directory(feed: Path, identity_env: dict[str, str], report: Path, echo: Echo) -> None:
    """Import a small synthetic AAF feed into identity's directory once (kept in `feed`)."""
    done = feed / "imported"
    if done.exists():
        return
    echo("seeding a demo directory (2 collèges, about 600 persons)…")
    identity = str(bin_of("maille-identity"))
    subprocess.run(
        # One parent with a child in each collège: ÉduConnect signs them in as one person with two entries.
        [identity, "generate-aaf", str(feed), "--persons", "600", "--schools", "2", "--shared-parents", "1"],
        check=True,
        capture_output=True,
        text=True,
    )
    imported = subprocess.run(
        [identity, "import-aaf", str(feed), "--report", str(report)],
        env={**os.environ, **identity_env},
        capture_output=True,
        text=True,
    )
    if imported.returncode != 0:
        raise NotReady(f"the demo directory could not be imported:\n{imported.stdout}{imported.stderr}")
    echo(f"  {imported.stdout.strip().splitlines()[-1]}")
    done.write_text(imported.stdout)


def sync_keycloak(identity_env: dict[str, str], echo: Echo, attempts: int = 5) -> None:
    """Reconcile the realm (identity does so too when it starts: a clash between the two is tried again)."""
    for _ in range(attempts):
        synced = subprocess.run(
            [str(bin_of("maille-identity")), "sync-keycloak"],
            env={**os.environ, **identity_env},
            capture_output=True,
            text=True,
        )
        if synced.returncode == 0:
            echo(f"  {synced.stdout.strip().splitlines()[-1]}")
            return
        time.sleep(2)
    raise NotReady(f"the realm could not be reconciled:\n{synced.stdout}{synced.stderr}")


def demo_users(keycloak_url: str, admin: tuple[str, str], identity_env: dict[str, str], echo: Echo) -> None:
    """The local demo users — demo-eleve (a pupil of the demo directory), demo-parent (one of that pupil's parents),
    demo-enseignant (a teacher), demo-direction (a principal) — each linked to their directory entry by identity,
    password MAILLE_DEMO_PASSWORD (default demo)."""
    from maille_devstack.stack import demo_people, link_local_account

    password = os.environ.get("MAILLE_DEMO_PASSWORD") or "demo"
    people = {username: person for username, person in demo_people(_mongodb(identity_env)).items() if person}
    with admin_client(keycloak_url, *admin) as api:
        for username, person in people.items():
            ensure_user(api, username, password, first=person.get("first_name", ""), last=person.get("last_name", ""))
    # Linked by identity, the only one who writes who an account is (its link, and the account's ent_id).
    for username, person in people.items():
        if person.get("_id"):
            link_local_account(identity_env, username, person["_id"])
    echo(f"  demo users: {', '.join(people)} (password: MAILLE_DEMO_PASSWORD, default demo)")


def register_cdis(
    *,
    keycloak_url: str,
    admin: tuple[str, str],
    gateway_url: str,
    pmb_url: str,
    opac_url: str,
    schools: list[str],
    echo: Echo,
) -> None:
    """Each demo school's CDI registered with the library, as an operator does through the gateway: its PMB
    database, OPAC and sign-on salt, readers synced from the directory. The operator is a client of the realm made
    for this (`maille-devstack-operator`, role operator, a new secret each time)."""
    client_id, secret = "maille-devstack-operator", os.urandom(16).hex()
    with admin_client(keycloak_url, *admin) as api:
        ensure_service_client(api, client_id, secret, roles=("operator",))
    token = (
        httpx.post(
            f"{keycloak_url}/realms/maille/protocol/openid-connect/token",
            timeout=30,
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        )
        .raise_for_status()
        .json()["access_token"]
    )
    for uai in schools:
        body = {
            "url": pmb_url,
            "sourceId": 1,
            "user": "maille",
            "password": "secret-ws",
            "database": f"cdi{uai}",
            "opacUrl": f"{opac_url}/opac/cdi{uai}",
            "loginSalt": "sel-opac",
            "syncReaders": True,
        }
        answer = httpx.put(
            f"{gateway_url}/api/library/v1/operator/schools/{uai}/pmb",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        if answer.status_code not in (200, 201):
            raise NotReady(f"the CDI of {uai} could not be registered: {answer.status_code} {answer.text[:300]}")
    echo(f"  CDIs registered with the library: {', '.join(schools)} (the PMB peer, readers synced, OPAC sign-on)")


def _mongodb(identity_env: dict[str, str]) -> str:
    return identity_env.get("MAILLE_IDENTITY_MONGODB_URL") or "mongodb://127.0.0.1:27017"


def from_environment(echo: Echo = print) -> int:
    """`maille-devstack seed`: every step, with what the environment says (compose's seed job)."""
    from maille_devstack.stack import demo_schools

    env = os.environ
    identity_env = {name: value for name, value in env.items() if name.startswith("MAILLE_IDENTITY_")}
    keycloak = env.get("MAILLE_SEED_KEYCLOAK_URL", "http://keycloak:8080")
    admin = (env.get("KEYCLOAK_ADMIN", "admin"), env.get("KEYCLOAK_ADMIN_PASSWORD", "admin"))
    feed = Path(env.get("MAILLE_SEED_DIR", "/tmp/maille-seed")) / "demo-aaf"
    feed.parent.mkdir(parents=True, exist_ok=True)
    seed_directory(feed, identity_env, feed.parent / "demo-aaf-report.txt", echo)
    sync_keycloak(identity_env, echo)
    demo_users(keycloak, admin, identity_env, echo)
    register_cdis(
        keycloak_url=keycloak,
        admin=admin,
        gateway_url=env.get("MAILLE_SEED_GATEWAY_URL", "http://gateway:8080"),
        pmb_url=env.get("MAILLE_SEED_PMB_URL", "http://pmb:8205"),
        opac_url=env.get("MAILLE_SEED_PMB_OPAC_URL", "http://localhost:8205"),
        schools=demo_schools(_mongodb(identity_env)),
        echo=echo,
    )
    echo("the demo platform is seeded: sign in at http://localhost:8000 as demo-eleve, password demo")
    return 0
