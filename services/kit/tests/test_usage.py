"""The uses a service tells the observatory, on a real NATS: batched, the person as the month's pseudonym only, a
batch NATS did not take sent again under the same id (kept once), the oldest dropped beyond the limit."""

from __future__ import annotations

from datetime import date

from maille.observatory.v1 import usage_pb2 as pb
from maille_kit.bus import Bus, Stream
from maille_kit.events import decode
from maille_kit.usage import Kind, Uses, month_of, pseudonym

STREAM = Stream(name="OBSERVATORY", subjects=("observatory.>",))
KEY = "the-usage-key"


def test_a_week_never_spans_two_months_of_pseudonyms() -> None:
    # Monday 30 November 2026 to Sunday 6 December 2026: its Thursday is 3 December.
    assert {month_of(date(2026, 11, 30)), month_of(date(2026, 12, 6))} == {"2026-12"}
    # Monday 28 December 2026 to Sunday 3 January 2027: its Thursday is 31 December.
    assert month_of(date(2027, 1, 3)) == "2026-12" and month_of(date(2027, 1, 4)) == "2027-01"


async def stored(bus: Bus) -> list[tuple[str, list[pb.Use]]]:
    info = await bus.js.stream_info(STREAM.name)
    found = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        message = await bus.js.get_msg(STREAM.name, seq)
        event = decode(message.data or b"")
        found.append((event.id, list(event.unpack(pb.UseRecorded).uses)))
    return found


async def test_uses_go_in_batches_and_a_batch_nats_refused_goes_again_under_its_id(nats_factory) -> None:
    nats = nats_factory()
    bus = Bus(nats.url, name="test-uses")
    await bus.connect(timeout=5)
    try:
        uses = Uses(bus, key=KEY, source="tests", batch=3)
        for n in range(7):
            uses.record(
                Kind.KIND_MAIL_SENT, f"person-{n}", school="0350001L", profile="National_ENS", service="messagerie"
            )
        uses.record(Kind.KIND_MAIL_SENT, "", school="0350001L")  # no person: nothing to count
        # No stream yet: NATS takes nothing, the batches wait, whole.
        assert await uses.flush() == 0 and len(uses.unsent) == 3 and not uses.pending
        waiting = [headers["Nats-Msg-Id"] for _, _, headers in uses.unsent]
        await bus.ensure_streams([STREAM])
        assert await uses.flush() == 3 and not uses.unsent
        found = await stored(bus)
        assert [event_id for event_id, _ in found] == waiting
        told = [u for _, batch in found for u in batch]
        assert [len(batch) for _, batch in found] == [3, 3, 1] and len(told) == 7
        first = told[0]
        assert first.pseudonym == pseudonym(KEY.encode(), "person-0", first.at_ms) and first.school == "0350001L"
        assert all("person" not in u.SerializeToString().decode("latin-1") for u in told)
        # A batch whose acknowledgement was lost and is sent again is kept once.
        uses.unsent = [(s, d, h) for s, d, h in (await _again(bus, found[0][0]))]
        assert await uses.flush() == 1
        assert len(await stored(bus)) == 3
    finally:
        await bus.close()


async def _again(bus: Bus, event_id: str) -> list[tuple[str, bytes, dict[str, str]]]:
    info = await bus.js.stream_info(STREAM.name)
    message = await bus.js.get_msg(STREAM.name, info.state.first_seq)
    return [(message.subject, message.data or b"", {"Nats-Msg-Id": event_id})]


async def test_beyond_the_limit_the_oldest_uses_are_dropped_and_without_a_key_nothing_is_told(nats_factory) -> None:
    nats = nats_factory()
    bus = Bus(nats.url, name="test-uses")
    await bus.connect(timeout=5)
    try:
        await bus.ensure_streams([STREAM])
        full = Uses(bus, key=KEY, source="tests", max_pending=5)
        for n in range(8):
            full.record(Kind.KIND_NEWS_READ, f"p{n}", service="actualites")
        assert len(full.pending) == 5
        assert full.pending[0].pseudonym == pseudonym(KEY.encode(), "p3", full.pending[0].at_ms)
        off = Uses(bus, key="", source="tests")
        off.record(Kind.KIND_NEWS_READ, "p1", service="actualites")
        assert not off.enabled and not off.pending and await off.flush() == 0
    finally:
        await bus.close()
