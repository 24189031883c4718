"""What a person's open pages hear at once: a new notification, or their unread count after they read some. Published
on core NATS (`maille_contracts.live_subject`), heard by the gateways that hold the person's open streams; nothing is
kept — a page that was closed reads its count when it opens."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from maille_contracts import live_subject
from maille_kit.bus import Bus

log = logging.getLogger("maille.timeline")


class Live:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def tell(self, persons: Iterable[str], event: str, data: dict[str, Any]) -> None:
        """`event` (`notification`, `unread`) with `data` to each person's open pages; best effort (the feed holds
        the truth): NATS away, the signal is dropped and said in the log."""
        payload = json.dumps({"event": event, "data": data}, ensure_ascii=False, separators=(",", ":")).encode()
        if self.bus.nc is None or not self.bus.connected:
            log.warning("live signals not sent: NATS is away")
            return
        try:
            for person in persons:
                await self.bus.nc.publish(live_subject(person), payload)
        except Exception as exc:
            log.warning("live signals not all sent: %s", exc)
