"""A pace: at most so many things a second on average, a burst allowed after a quiet spell.

Background work that shares the platform with people — a night's import, its followers, the writes to a school's
PMB — goes at a pace so that it never takes every core or a peer's every connection at once.
"""

from __future__ import annotations

import asyncio
import time


class Pace:
    """At most `rate` a second on average, up to `burst` at once after a quiet spell (a second's worth by default);
    `rate` 0: no limit. Concurrent callers each wait their own turn."""

    def __init__(self, rate: float, *, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = rate if burst is None else burst
        self.tokens = self.burst
        self.at = time.monotonic()

    async def spent(self, count: int = 1) -> None:
        """Count `count` done (or about to be); wait while more than the pace allows were."""
        if self.rate <= 0 or count <= 0:
            return
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate) - count
        self.at = now
        if self.tokens < 0:
            await asyncio.sleep(-self.tokens / self.rate)
