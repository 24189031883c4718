"""One change at a time to one thing (a resource, a subscription) in this process; a version check on
write refuses what another replica changed meanwhile."""

from __future__ import annotations

import asyncio

_locks: dict[str, list[asyncio.Lock | int]] = {}  # key -> [its lock, how many hold it or wait for it]


class one_at_a_time:
    """`async with one_at_a_time(key)`: the lock forgotten once nobody needs it."""

    def __init__(self, key: str) -> None:
        self.key = key

    async def __aenter__(self) -> None:
        entry = _locks.setdefault(self.key, [asyncio.Lock(), 0])
        entry[1] += 1  # type: ignore[operator]
        try:
            await entry[0].acquire()  # type: ignore[union-attr]
        except BaseException:
            self._leave(entry)
            raise

    async def __aexit__(self, *exc: object) -> None:
        entry = _locks[self.key]
        entry[0].release()  # type: ignore[union-attr]
        self._leave(entry)

    def _leave(self, entry: list[asyncio.Lock | int]) -> None:
        entry[1] -= 1  # type: ignore[operator]
        if entry[1] == 0:
            _locks.pop(self.key, None)
