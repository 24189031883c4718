"""Searching the CDIs of one's schools through the library service: every school's PMB at once, merged and paged;
a PMB down, slow or refusing leaves the others' results and is named; operators register the connections."""

from __future__ import annotations

import json
import time

from .conftest import API, SCHOOLS, Library, person

A, B, C = SCHOOLS


async def register(library: Library, *uais: str) -> None:
    operator = library.operator()
    for uai in uais:
        answer = await library.client.put(
            f"{API}/operator/schools/{uai}/pmb", headers=operator, json=library.connection(uai)
        )
        assert answer.status_code == 201, answer.text


async def test_a_teacher_of_three_schools_searches_their_three_cdis_at_once(library: Library) -> None:
    await register(library, A, B, C)
    await library.persons(person("teacher", (A, "National_ENS"), (B, "National_ENS"), (C, "National_DOC")))
    me = library.as_person("teacher")
    found = (await library.client.get(f"{API}/search", params={"q": "petit prince", "size": 6}, headers=me)).json()
    assert (
        found["missing"] == [] and found["total"] == 4 + 5 + 6
    )  # 40, 50 and 60 records: every tenth is the Petit Prince
    assert [r["uai"] for r in found["results"]] == [A, B, C, A, B, C]  # each school's best first
    first = found["results"][0]
    assert first["title"].startswith("Le Petit Prince") and first["authors"] == ["Antoine de Saint-Exupéry"]
    assert first["opac"] == f"https://cdi-{A.lower()}.example.fr/opac/index.php?lvl=notice_display&id={first['id']}"
    assert first["copies"] == 2 and first["isbn"] and first["cover"].startswith("https://")
    second = (
        await library.client.get(f"{API}/search", params={"q": "petit prince", "size": 6, "page": 1}, headers=me)
    ).json()
    assert len(second["results"]) == 6 and not {(r["uai"], r["id"]) for r in second["results"]} & {
        (r["uai"], r["id"]) for r in found["results"]
    }
    by_author = (await library.client.get(f"{API}/search", params={"q": "hugo", "type": "author"}, headers=me)).json()
    assert by_author["total"] == 15 and all(r["authors"] == ["Victor Hugo"] for r in by_author["results"])
    # Quotes and wildcards are words like others; the same search again within a minute is not asked of PMB again.
    asked = len(library.pmb.requests)
    again = (await library.client.get(f"{API}/search", params={"q": "petit prince", "size": 6}, headers=me)).json()
    assert again == found and len(library.pmb.requests) == asked
    quoted = await library.client.get(f"{API}/search", params={"q": '"petit" prince*'}, headers=me)
    assert quoted.status_code == 200 and quoted.json()["total"] == 15


async def test_a_pmb_down_slow_or_refusing_leaves_the_other_schools(library: Library) -> None:
    await register(library, A, B)  # C has no connection
    await library.persons(person("pupil", (A, "National_ELV"), (B, "National_ELV"), (C, "National_ELV")))
    me = library.as_person("pupil")
    library.pmb.failing.add(f"cdi{B}")
    found = (await library.client.get(f"{API}/search", params={"q": "germinal"}, headers=me)).json()
    assert {r["uai"] for r in found["results"]} == {A} and found["total"] == 4
    assert found["missing"] == [
        {"uai": B, "reason": f"PMB cdi{B} refused pmbesSearch_simpleSearch: MySQL server has gone away"},
        {"uai": C, "reason": "no PMB connection is registered for this school"},
    ]
    library.pmb.failing.clear()
    library.pmb.garbage.add(f"cdi{A}")
    found = (await library.client.get(f"{API}/search", params={"q": "candide"}, headers=me)).json()
    assert {r["uai"] for r in found["results"]} == {B}
    assert found["missing"][0] == {"uai": A, "reason": f"PMB cdi{A} answered something that is not JSON"}
    library.pmb.garbage.clear()
    library.pmb.delay = 3.0  # slower than the search waits: answered without any PMB, within the wait
    started = time.perf_counter()
    slow = (await library.client.get(f"{API}/search", params={"q": "horla"}, headers=me)).json()
    assert time.perf_counter() - started < 2.0
    assert slow["results"] == [] and [m["uai"] for m in slow["missing"]] == [A, B, C]
    assert "did not answer within" in slow["missing"][0]["reason"]


async def test_bad_searches_and_connections_are_refused_clearly(library: Library) -> None:
    await library.persons(person("nobody-anywhere"))
    me = library.as_person("nobody-anywhere")
    empty = (await library.client.get(f"{API}/search", params={"q": "prince"}, headers=me)).json()
    assert empty == {"q": "prince", "total": 0, "page": 0, "size": 20, "results": [], "missing": []}
    for params, field in (
        ({"q": ""}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"q": "a", "type": "isbn"}, "type"),
        ({"q": "a", "size": 500}, "size"),
    ):
        answer = await library.client.get(f"{API}/search", params=params, headers=me)
        assert answer.status_code == 422 and answer.headers["content-type"].startswith("application/problem+json"), (
            answer.text
        )
        assert field in answer.text
    blank = await library.client.get(f"{API}/search", params={"q": "   "}, headers=me)
    assert blank.status_code == 422 and "at least one word" in blank.json()["detail"]
    assert (await library.client.get(f"{API}/search", params={"q": "a"})).status_code == 401

    operator = library.operator()
    path = f"{API}/operator/schools/{A}/pmb"
    assert (await library.client.put(path, headers=me, json=library.connection(A))).status_code == 403
    for bad in (
        {"url": "javascript:alert(1)"},
        {"url": "http://[::1"},
        {"url": "http://cdi.example.fr:port/pmb"},
        {"opacUrl": "http://[x]/"},
        {"sourceId": 0},
        {"auth": "body"},
        {"database": "cdi;DROP"},
        {"extra": 1},
        {"readerCstat": 9326279360939581000000},
        {"user": "\u0015\u0002"},
        {"password": "\ud83d"},
    ):
        body = json.dumps(library.connection(A, **bad))  # \ud83d stays an escape: a lone surrogate, as JSON allows
        answer = await library.client.put(path, headers=operator | {"content-type": "application/json"}, content=body)
        assert answer.status_code == 422, (bad, answer.text)
    assert (
        await library.client.put(f"{API}/operator/schools/not-a-uai/pmb", headers=operator, json=library.connection(A))
    ).status_code == 422
    assert (await library.client.put(path, headers=operator, json=library.connection(A))).status_code == 201
    replaced = await library.client.put(
        path, headers=operator, json=library.connection(A, auth="body", connexionPhrase="phrase-connexion")
    )
    assert replaced.status_code == 200 and replaced.json()["auth"] == "body"
    shown = (await library.client.get(path, headers=operator)).json()
    assert "password" not in shown and "connexionPhrase" not in shown and shown["user"] == "maille"
    assert [c["uai"] for c in (await library.client.get(f"{API}/operator/schools", headers=operator)).json()] == [A]
    assert (await library.client.delete(path, headers=operator)).status_code == 204
    assert (await library.client.get(path, headers=operator)).status_code == 404
