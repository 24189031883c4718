"""The fast lane (lane.py) subclasses uvicorn's HTTP protocol and replaces some of its methods: they were written
against uvicorn's code of the version pyproject.toml allows. When uvicorn changes that code, this fails — read the
new code, bring lane.py in line, then record the new fingerprints here."""

import hashlib
import inspect

from uvicorn.middleware.proxy_headers import _TrustedHosts
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

# The sha256 of the source of each uvicorn method the lane replaces or relies on, as written against uvicorn 0.54.
REPLACED = {
    "HttpToolsProtocol.__init__": "4f08999410347141",
    "HttpToolsProtocol.connection_made": "6efb565ff3d36b91",
    "HttpToolsProtocol.on_message_begin": "96d377fdc7c2baef",
    "HttpToolsProtocol.on_headers_complete": "1ea8589acfad92d8",
    "HttpToolsProtocol.on_response_complete": "64e254f28e389e76",
    "HttpToolsProtocol._unset_keepalive_if_required": "00a6a4e47214e68e",
    "HttpToolsProtocol._start_asgi_task": "9c08c2571ae9b038",
    "RequestResponseCycle.__init__": "4d2f220910c33c12",
    "_TrustedHosts.__contains__": "c91fce85486cd269",
}
OWNERS = {
    "HttpToolsProtocol": HttpToolsProtocol,
    "RequestResponseCycle": RequestResponseCycle,
    "_TrustedHosts": _TrustedHosts,
}


def fingerprint(qualified: str) -> str:
    owner, _, name = qualified.partition(".")
    return hashlib.sha256(inspect.getsource(getattr(OWNERS[owner], name)).encode()).hexdigest()[:16]


def test_the_uvicorn_internals_the_lane_replaces_are_the_ones_it_was_written_against() -> None:
    changed = {name: fingerprint(name) for name, recorded in REPLACED.items() if fingerprint(name) != recorded}
    assert not changed, f"uvicorn's code under the fast lane changed: {changed}"
