"""Mail bodies that cannot attack their readers: a pupil writes to their teacher with real attack payloads — an
overlay that fakes a sign-in page, CSS beacons, `data:` and `javascript:` links, a tracking pixel — and the
teacher reads what is left through the gateway. Real Keycloak, identity (the communication rules), messaging
and gateway (`maille_devstack.sso`)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from maille_devstack.processes import DocstoreServer, KeycloakServer
from maille_devstack.sso import Platform, sso_platform

pytestmark = pytest.mark.keycloak

ATTACKS = {
    "overlay": '<div style="position:fixed;top:0;left:0;width:100%;height:100%;z-index:9999;background:#fff">'
    'Votre session a expiré : <a href="https://ent-connexion.example/login">reconnectez-vous</a></div>',
    "css beacon": '<p style="background-image:url(https://tracker.example/b.gif?who=teacher)">Bonjour</p>'
    "<style>p{background:url(https://tracker.example/s.gif)}</style>",
    "data link": '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydChkb2N1bWVudC5jb29raWUpPC9zY3JpcHQ+">le devoir</a>',
    "javascript link": "<a href=\"javascript:fetch('/api/messaging/v1/folders')\">le corrigé</a>",
    "tracking pixel": '<img src="https://tracker.example/open.gif?mail=42" width="1" height="1" alt="">',
    "inline image": '<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==">',  # noqa: E501
    "handlers": '<p onmouseover="steal()">survol</p><svg onload="steal()"></svg><script>steal()</script>',
}


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, keycloak_server: KeycloakServer, docstore_server: DocstoreServer
) -> Iterator[Platform]:
    with sso_platform(
        tmp_path_factory.mktemp("mail"), keycloak_server, docstore_server, tenant="ac-mail", with_messaging=True
    ) as started:
        yield started


def test_a_mail_cannot_attack_its_reader(platform: Platform) -> None:
    teacher_browser, teacher = platform.sign_in("academie", "T1")
    pupil_browser, _ = platform.sign_in("educonnect", "E1")
    csrf = pupil_browser.site_cookies(platform.gateway)["maille_csrf"]
    subject = '<img src=x onerror="alert(1)"> Question'
    sent = pupil_browser.request(
        "POST",
        f"{platform.gateway}/api/messaging/v1/messages",
        headers={"x-csrf-token": csrf},
        json={
            "to": [{"type": "person", "id": teacher.json()["id"]}],
            "subject": subject,
            "body": "<p>Madame, <b>voici</b> ma question.</p>"
            + "".join(ATTACKS.values())
            + '<p style="color:red">important</p>',
        },
    )
    assert sent.status_code == 201, sent.text
    inbox = teacher_browser.request("GET", f"{platform.gateway}/api/messaging/v1/folders/inbox/messages").json()[
        "entries"
    ]
    entry = next(e for e in inbox if e["id"] == sent.json()["id"])
    # The subject and the snippet are text, shown as such: nothing in them is markup.
    assert entry["subject"] == subject and "<" not in entry["snippet"] and "voici" in entry["snippet"]
    read = teacher_browser.request("GET", f"{platform.gateway}/api/messaging/v1/messages/{sent.json()['id']}")
    body = read.json()["body"]
    assert "<b>voici</b>" in body and 'style="color:red"' in body  # what a person writes stays
    for found in (
        "position",
        "z-index",
        "url(",
        "tracker.example",
        "data:",
        "javascript:",
        "onmouseover",
        "onload",
        "<script",
        "<style",
        "<svg",
    ):
        assert found not in body, (found, body)
    assert not re.search(r"<img[^>]*src=", body)  # no image the reader's browser would fetch from elsewhere
    assert "reconnectez-vous" in body  # the text of the overlay remains, as plain text in the flow
    # What the gateway answers is data, never a page that runs: even opened directly, it is sandboxed.
    assert "sandbox" in read.headers["content-security-policy"] and read.headers["x-content-type-options"] == "nosniff"
