"""Rate limits: a token bucket per caller (person, API client, or address without a token).

Each gateway process keeps its own buckets: no round trip on the request path. With several processes
or replicas behind a load balancer, each enforces the whole rate, so a caller spread over N of them
could get up to N times the rate; `RateLimiter(share=N)` divides the rate between them (the Helm chart
sets it from the replica count). See docs/gateway.md, "Rate limits".
"""

from __future__ import annotations

import time


class RateLimiter:
    """Token buckets: `rate` requests per second sustained, bursts of `rate × burst_seconds`."""

    def __init__(self, *, burst_seconds: float, share: int = 1, max_callers: int = 200_000) -> None:
        self.burst_seconds = burst_seconds
        self.share = max(1, share)
        self.max_callers = max_callers
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, last refill]

    def take(self, key: str, rate: float) -> float:
        """0 when the request may go; otherwise the seconds to wait before the next one will."""
        rate = rate / self.share
        capacity = max(1.0, rate * self.burst_seconds)
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_callers:
                self._forget_full(now, rate)
            self._buckets[key] = [capacity - 1, now]
            return 0.0
        tokens = min(capacity, bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now
        if tokens >= 1:
            bucket[0] = tokens - 1
            return 0.0
        bucket[0] = tokens
        return (1 - tokens) / rate

    def _forget_full(self, now: float, rate: float) -> None:
        # A bucket that has refilled is the same as no bucket: forget those (and, if the table is
        # still full, the oldest half), so that the table stays bounded whoever calls.
        horizon = self.burst_seconds
        kept = {k: b for k, b in self._buckets.items() if now - b[1] < horizon}
        if len(kept) >= self.max_callers:
            kept = dict(list(kept.items())[len(kept) // 2 :])
        self._buckets = kept
