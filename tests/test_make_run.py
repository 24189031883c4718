"""What `make run` starts (maille-devstack run): the whole platform answers, then Ctrl-C stops it and
leaves no process behind. Run here on free ports and a temporary .var, beside any real `make run`."""

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import nats
from pymongo import MongoClient

from maille_devstack.browser import Browser
from maille_devstack.processes import port_open
from maille_devstack.stack import Ports, state_file
from maille_devstack.started import devstack


def re_sources(page: str) -> list[str]:
    import re

    return re.findall(r'(?:src|href)="([^"]+)"', page)


def until_answered(request, key: str, seconds: float = 120) -> httpx.Response:
    """The answer once it is a 200 whose `key` is not empty (the services learn in the background), or the last one."""
    deadline = time.monotonic() + seconds
    while True:
        answer = request()
        if answer.status_code == 200 and answer.json()[key] or time.monotonic() > deadline:
            return answer
        time.sleep(2)


def pids_alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            continue
        alive.append(pid)
    return alive


def import_while_serving(gateway: str, work: Path, command_env: dict[str, str], mate: str) -> dict[str, object]:
    """Import a feed that changes the demo directory's 600 persons (another seed: other names, classes, addresses)
    with `maille-identity import-aaf`, while demo users sign in, read their inbox, write and open their
    médiacentre in a loop; every request and the import have a deadline. What happened, counted."""
    bin_dir = Path(sys.executable).parent
    feed = work / "night-feed"
    subprocess.run(
        [
            str(bin_dir / "maille-identity"),
            "generate-aaf",
            str(feed),
            "--persons",
            "600",
            "--schools",
            "2",
            "--seed",
            "8",
        ],
        env=command_env,
        capture_output=True,
        timeout=120,
        check=True,
    )
    importing = subprocess.Popen(
        [str(bin_dir / "maille-identity"), "import-aaf", str(feed), "--report", str(work / "night.txt")],
        env=command_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    done: list[str] = []
    failed: list[tuple[str, int | str]] = []
    slowest = 0.0

    def timed(what: str, call) -> httpx.Response | None:
        nonlocal slowest
        started = time.monotonic()
        try:
            answer = call()
        except Exception as exc:  # a deadline passed, a connection broke: a failure like any other
            failed.append((what, type(exc).__name__))
            return None
        slowest = max(slowest, time.monotonic() - started)
        if answer.status_code >= 400:
            failed.append((what, answer.status_code))
            return None
        done.append(what)
        return answer

    def serve(username: str, writes: bool) -> None:
        while importing.poll() is None:
            browser = Browser()  # every request of it has a 30 s deadline
            page = browser.go(f"{gateway}/login?next=/api/identity/v1/me")
            if timed("sign-in", lambda: browser.sign_in(page, username, "demo")) is None:
                continue
            csrf = browser.site_cookies(gateway)["maille_csrf"]
            timed("inbox", lambda: browser.request("GET", f"{gateway}/api/messaging/v1/folders/inbox/messages"))
            writes and timed(
                "send",
                lambda: browser.request(
                    "POST",
                    f"{gateway}/api/messaging/v1/messages",
                    headers={"x-csrf-token": csrf},
                    json={"to": [{"type": "person", "id": mate}], "subject": "Nuit", "body": "<p>?</p>"},
                ),
            )
            timed("mediacentre", lambda: browser.request("GET", f"{gateway}/api/catalog/v1/mediacentre"))

    # the pupil writes to the classmate she wrote to before; the teacher reads
    users = [threading.Thread(target=serve, args=user) for user in (("demo-eleve", True), ("demo-enseignant", False))]
    for user in users:
        user.start()
    try:
        output, _ = importing.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        importing.kill()
        output, _ = importing.communicate()
    for user in users:
        user.join(timeout=120)
    return {
        "import": importing.returncode,
        "output": output[-2000:],
        "done": done,
        "failed": failed,
        "slowest": slowest,
    }


def pmb_reader(pmb_port: int, uai: str, person_id: str) -> dict[str, object]:
    """A reader as the school's PMB holds it (its web service, as the library calls it)."""
    answer = httpx.post(
        f"http://127.0.0.1:{pmb_port}/pmb/ws/connector_out.php",
        params={"source_id": 1, "database": f"cdi{uai}"},
        json={"id": 1, "method": "pmbesEmpr_fetch_empr", "params": [person_id]},
        auth=("maille", "secret-ws"),
        timeout=10,
    )
    return answer.json().get("result") or {}


def delta_of_first_names(work: Path, command_env: dict[str, str], ports: Ports) -> dict[str, object]:
    """Import the delta of the night feed's persons that changes their first names; what each follower did."""
    bin_dir = Path(sys.executable).parent
    delta = work / "night-delta"
    subprocess.run(
        [str(bin_dir / "maille-identity"), "generate-aaf", str(delta), "--persons", "600", "--schools", "2"]
        + ["--seed", "8", "--delta", "1"],
        env=command_env,
        capture_output=True,
        timeout=120,
        check=True,
    )
    with MongoClient(
        f"mongodb://127.0.0.1:{ports.docstore}", serverSelectionTimeoutMS=3000, timeoutMS=10_000
    ) as client:
        claims = {name: client[f"maille_{name}"]["events_claimed"] for name in ("catalog", "library")}
        before = {name: claimed.count_documents({}) for name, claimed in claims.items()}
        done = subprocess.run(
            [str(bin_dir / "maille-identity"), "import-aaf", str(delta)],
            env=command_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        updated = int(found.group(1).replace(",", "")) if (found := re.search(r"([\d,]+) updated", done.stdout)) else 0
        pupil = client["maille_identity"]["persons"].find_one({"kind": "pupil"}, sort=[("updated_at", -1)])

        def followed() -> bool:
            reader = client["maille_library"]["readers"].find_one({"_id": pupil["_id"]}) or {}
            return (
                reader.get("prenom") == pupil["first_name"]
                and claims["library"].count_documents({}) >= before["library"] + updated
            )

        def in_pmb() -> bool:  # the change reaches the school's PMB, at the reader sync's pace
            return (
                pmb_reader(ports.pmb, pupil["profiles"][0]["structure"], pupil["_id"]).get("prenom")
                == pupil["first_name"]
            )

        deadline = time.monotonic() + 120
        while not (followed() and in_pmb()) and time.monotonic() < deadline:
            time.sleep(1)
        time.sleep(3)  # what the catalog would have claimed by now, were it handling these events
        return {
            "import": done.returncode,
            "output": done.stdout[-1500:] + done.stderr[-1500:],
            "updated": updated,
            "library follows": followed(),
            "PMB reader renamed": in_pmb(),
            "library claimed": claims["library"].count_documents({}) - before["library"],
            "catalog claimed": claims["catalog"].count_documents({}) - before["catalog"],
        }


def test_whole_platform_up_then_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    var = tmp_path / "var"
    with devstack(var) as stack:  # `maille-devstack run` on free ports, stopped by Ctrl-C on leaving
        ports, output = stack.ports, stack.output
        assert f"http://localhost:{ports.gateway}" in output

        # The checks of the issue, on this stack's ports.
        assert httpx.get(f"http://localhost:{ports.gateway}/healthz").status_code == 200
        about = httpx.get(f"http://localhost:{ports.gateway}/api/catalog/v1/about").json()
        assert about["name"] == "catalog" and about["nats"]["jetstream"] and about["docstore"]["connected"]
        with MongoClient(f"mongodb://127.0.0.1:{ports.docstore}", serverSelectionTimeoutMS=3000) as client:
            assert client.admin.command("hello")["ok"] == 1.0
            # The demo directory is seeded from a synthetic AAF feed (until identity's read API serves it).
            assert "seeding a demo directory" in output
            assert client["maille_identity"]["persons"].count_documents({"kind": "pupil"}) > 100
        discovery = httpx.get(f"http://localhost:{ports.keycloak}/realms/maille/.well-known/openid-configuration")
        assert discovery.json()["issuer"] == f"http://localhost:{ports.keycloak}/realms/maille"

        async def jetstream_streams() -> int:
            # Each deployable is its own NATS user (passwords kept in .var/nats-users.json); nobody else gets in.
            users = json.loads((var / "nats-users.json").read_text())
            try:
                anonymous = await nats.connect(
                    f"nats://127.0.0.1:{ports.nats}", connect_timeout=2, allow_reconnect=False
                )
            except Exception:
                anonymous = None
            else:
                await anonymous.close()
            assert anonymous is None, "NATS let an anonymous client in"
            nc = await nats.connect(
                f"nats://127.0.0.1:{ports.nats}",
                user="identity",
                password=users["identity"],
                inbox_prefix="_INBOX_identity",
            )
            info = await nc.jetstream().account_info()
            await nc.close()
            return info.streams

        assert asyncio.run(jetstream_streams()) >= 4  # each service declared the streams it owns
        for name in ("identity", "messaging", "library"):
            assert httpx.get(f"http://localhost:{ports.gateway}/api/{name}/v1/about").json()["name"] == name

        # The demo accounts sign in through the gateway and Keycloak's login page, each landing on
        # their own directory entry.
        gateway = f"http://localhost:{ports.gateway}"
        for username, kind in (("demo-eleve", "pupil"), ("demo-parent", "parent"), ("demo-enseignant", "staff")):
            browser = Browser()
            page = browser.go(f"{gateway}/login?next=/api/identity/v1/me")
            me = browser.sign_in(page, username, "demo")
            assert me.status_code == 200, (username, me.text[:300])
            with MongoClient(f"mongodb://127.0.0.1:{ports.docstore}", serverSelectionTimeoutMS=3000) as client:
                assert client["maille_identity"]["persons"].find_one({"_id": me.json()["id"]})["kind"] == kind
            home = browser.request("GET", f"{gateway}/")
            # The portal's page (its screens are tested in Chromium by tests/portal/).
            assert 'id="root"' in home.text and "frame-ancestors 'none'" in home.headers["content-security-policy"]

        # A pupil of the demo directory signs in through the EduConnect peer (username: AAF join key).
        with MongoClient(f"mongodb://127.0.0.1:{ports.docstore}", serverSelectionTimeoutMS=3000) as client:
            pupil = client["maille_identity"]["persons"].find_one({"kind": "pupil"})
        browser = Browser()
        page = browser.go(f"{gateway}/login", params={"idp": "educonnect", "next": "/api/identity/v1/me"})
        me = browser.sign_in_upstream(page, pupil["keys"][0], "demo")
        assert me.status_code == 200 and me.json()["id"] == pupil["_id"], me.text[:300]

        # Their médiacentre: the catalog learnt the directory from identity's events, and asks the GAR peer's
        # resource list over HTTPS with the ENT's client certificate.
        shelf = until_answered(lambda: browser.request("GET", f"{gateway}/api/catalog/v1/mediacentre"), "ressources")
        assert shelf.status_code == 200 and shelf.json()["gar"] == "ok", shelf.text[:300]
        assert all(r["sources"] == ["gar"] and "/domaineGar?" in r["lien"] for r in shelf.json()["ressources"])
        assert shelf.json()["ressources"], "the GAR peer lists resources for every school"

        # Their CDI: the school's PMB catalogue searched through the gateway (the library learnt their school from
        # identity's events), their reader account (readers synced into PMB), and the OPAC opened signed in.
        school = pupil["profiles"][0]["structure"]
        found = until_answered(
            lambda: browser.request("GET", f"{gateway}/api/library/v1/search", params={"q": "Germinal"}), "results"
        )
        assert found.status_code == 200 and found.json()["missing"] == [], found.text[:300]
        assert found.json()["results"] and all(
            "Germinal" in r["title"] and r["uai"] == school for r in found.json()["results"]
        )
        account = until_answered(lambda: browser.request("GET", f"{gateway}/api/library/v1/account"), "schools")
        assert [s["uai"] for s in account.json()["schools"]] == [school], account.text[:300]
        opac = browser.go(f"{gateway}{account.json()['schools'][0]['opac']}")
        assert opac.status_code == 200 and f"({pupil['_id']})" in opac.text and "Connecté" in opac.text, opac.text[:300]

        # They write to a classmate through the gateway (the communication rules asked of identity), who finds
        # it in their inbox.
        with MongoClient(f"mongodb://127.0.0.1:{ports.docstore}", serverSelectionTimeoutMS=3000) as client:
            mate = client["maille_identity"]["persons"].find_one(
                {"kind": "pupil", "classes": pupil["classes"][0], "_id": {"$ne": pupil["_id"]}}
            )
        csrf = browser.site_cookies(gateway)["maille_csrf"]
        sent = browser.request(
            "POST",
            f"{gateway}/api/messaging/v1/messages",
            headers={"x-csrf-token": csrf},
            json={
                "to": [{"type": "person", "id": mate["_id"]}],
                "subject": "Les devoirs",
                "body": "<p>Pour demain ?</p>",
            },
        )
        assert sent.status_code == 201, sent.text[:300]
        with MongoClient(f"mongodb://127.0.0.1:{ports.docstore}", serverSelectionTimeoutMS=3000) as client:
            copy = client["maille_messaging"]["copies"].find_one({"_id": f"{mate['_id']}:{sent.json()['id']}"})
            message = client["maille_messaging"]["messages"].find_one({"_id": sent.json()["id"]})
        assert copy is not None and copy["folder"] == "inbox" and copy["unread"] is True
        assert message["line"]["subject"] == "Les devoirs" and message["recipients"] == [mate["_id"]]

        # The night's AAF import while people use the platform: the import finishes, and so does every sign-in,
        # mail and médiacentre request made meanwhile (the docstore once froze on such an import's updates).
        command_env = stack.env_of("identity")
        served = import_while_serving(gateway, tmp_path, command_env, mate["_id"])
        assert served["import"] == 0, served
        assert served["failed"] == [] and served["slowest"] < 30, served
        assert {"sign-in", "inbox", "send", "mediacentre"} <= set(served["done"]), served
        with MongoClient(
            f"mongodb://127.0.0.1:{ports.docstore}", serverSelectionTimeoutMS=3000, timeoutMS=10_000
        ) as client:
            assert "maille_identity" in client.list_database_names()
        for name in ("identity", "catalog", "messaging", "library"):
            assert httpx.get(f"{gateway}/api/{name}/v1/about", timeout=10).json()["docstore"]["connected"], name

        # The next night's delta changes every one of those persons' first names: the services that show names
        # follow it (the library, and through it the school's PMB), those that keep none (the catalog, the
        # observatory) pass its events by without a write.
        renamed = delta_of_first_names(tmp_path, command_env, ports)
        assert renamed["import"] == 0, renamed
        assert renamed["library follows"] and renamed["PMB reader renamed"], renamed
        assert renamed["catalog claimed"] == 0 and renamed["library claimed"] >= renamed["updated"] > 200, renamed

        # An operator's command against this platform, in another terminal: `eval "$(maille-devstack env identity)"`
        # gives it development, identity's own NATS user and the docstore.
        assert (
            command_env["MAILLE_IDENTITY_ENVIRONMENT"] == "development" and command_env["MAILLE_IDENTITY_NATS_PASSWORD"]
        )
        exported = subprocess.run(
            [str(Path(sys.executable).parent / "maille-identity"), "rgpd-export", pupil["_id"]],
            env=command_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert exported.returncode == 0 and pupil["_id"] in exported.stdout, exported.stderr[-500:]

        # Security on the whole stack: the account API refuses the pupil's write of who they are (see
        # tests/security/), the API docs need no CDN, and signing out is a POST with the CSRF token.
        assert all(src.startswith("/") for src in re_sources(httpx.get(f"{gateway}/api/docs").text))
        assert browser.request("POST", f"{gateway}/logout").status_code == 403
        out = browser.through_saml(browser.post_form(browser.go(f"{gateway}/logout")))  # through EduConnect's logout
        assert out.status_code == 200 and browser.request("GET", f"{gateway}/api/identity/v1/me").status_code == 401

        parts = list(json.loads(state_file(var).read_text())["parts"].values())
        assert len(parts) == 16  # Keycloak, NATS, docstore, four peers, Mailpit, seven services, the gateway
    assert stack.returncode == 0, stack.rest
    assert pids_alive(parts) == []
    assert not any(port_open(port) for port in vars(ports).values())
    assert not state_file(var).exists()
    assert (var / "nats").is_dir() and (var / "docstore").is_dir()
