"""The night's import while NATS dies (`kill -9`) and comes back, and while the catalog dies in the middle of
consuming it: every person created is told once, and the catalog's copy of the directory ends up whole."""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter

import pytest

from maille_devstack.paths import bin_of

from .conftest import Platform, wait_until

pytestmark = pytest.mark.keycloak  # the platform's services check tokens against the session's Keycloak
PERSONS = "6000"


def importing(platform: Platform) -> subprocess.Popen[str]:
    """`maille-identity import-aaf` of a 6,000-person feed, started in the background."""
    feed = platform.work / "feed"
    assert platform.identity("generate-aaf", str(feed), "--persons", PERSONS, "--schools", "2").returncode == 0
    return subprocess.Popen(
        [str(bin_of("maille-identity")), "import-aaf", str(feed), "--report", str(platform.work / "report.txt")],
        env={**os.environ, **platform.env("identity")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def check_told_once_and_followed(platform: Platform) -> None:
    identity, catalog = platform.db("identity"), platform.db("catalog")
    persons = identity.persons.count_documents({})
    assert persons > 5000
    # what the import left in the outbox (NATS away) is relayed by the identity service; the catalog catches up
    wait_until(lambda: catalog.persons.count_documents({}) == persons, 180, "the catalog's copy of the directory whole")
    created = Counter(message_id for message_id, _ in platform.stream("IDENTITY", "identity.person.created.v1"))
    assert sum(created.values()) == persons and len(created) == persons, (sum(created.values()), len(created), persons)
    # each event the catalog was handed, marked done once: none handled twice in effect, none left
    wait_until(
        lambda: catalog.events_claimed.count_documents({}) == catalog.events_done.count_documents({}),
        60,
        "every event the catalog claimed marked done",
    )
    assert catalog.works.count_documents({}) == 0 and identity.works.count_documents({}) == 0


def test_nats_killed_during_the_import(platform: Platform) -> None:
    platform.start("identity")
    platform.start("catalog")
    running = importing(platform)
    assert running.stdout is not None
    read = ""
    while "Eleve" not in read and running.poll() is None:  # into the pupils
        read += running.stdout.readline()
    assert running.poll() is None, read
    platform.restart_nats(after=3)
    output, _ = running.communicate(timeout=300)
    assert running.returncode == 0, output[-2000:]
    check_told_once_and_followed(platform)


def test_the_catalog_killed_while_it_consumes_the_import(platform: Platform) -> None:
    platform.start("identity")
    catalog = platform.start("catalog")
    running = importing(platform)
    wait_until(lambda: platform.db("catalog").persons.count_documents({}) > 200, 120, "the catalog consuming")
    catalog.process.kill()
    output, _ = running.communicate(timeout=300)
    assert running.returncode == 0, output[-2000:]
    time.sleep(2)
    platform.start("catalog")
    check_told_once_and_followed(platform)
