"""A service's timed work (scheduled messages sent, digests at their hour, retention sweeps): each job a loop that runs
its work, says in the log what it did, and tries again at the next turn when the docstore, NATS or a relay is away for
a moment — all of a service's jobs started and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("maille.periodic")
Work = Callable[[], Awaitable[int]]


async def every(seconds: float, work: Work, what: str, logger: logging.Logger = log) -> None:
    """Run `work` every `seconds` until cancelled; what it did (a count) logged as `what` when it did anything."""
    while True:
        try:
            done = await work()
            if done:
                logger.info(what, extra={"count": done})
        except Exception as exc:  # a dependency away for a moment: the next turn
            logger.warning("%s failed: %s", what, exc)
        await asyncio.sleep(seconds)


class Periodic:
    """A service's timed jobs, a part of it: `Periodic(log).start([(seconds, work, what), …])`, then `stop()`."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self.logger = logger
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, jobs: list[tuple[float, Work, str]]) -> None:
        self.tasks += [
            asyncio.create_task(every(seconds, work, what, self.logger), name=what) for seconds, work, what in jobs
        ]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()
