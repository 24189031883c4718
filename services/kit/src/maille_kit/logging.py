"""JSON logs, one object a line, carrying the service, the request id and the trace and span ids."""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

# One encoder for every line: `json.dumps` with options builds a new encoder at each call.
_ENCODE = json.JSONEncoder(default=str, ensure_ascii=False).encode
_STRING = json.encoder.encode_basestring  # a JSON string, quoted and escaped (C)

request_id_var: ContextVar[str | None] = ContextVar("maille_request_id", default=None)

# Attributes every LogRecord has; anything else passed through `extra=` is written as a field.
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object with the ids that tie it to a request and a trace."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _ENCODE(entry)


def setup_logging(service: str, level: str = "INFO") -> None:
    """Send every log record of the process to stdout as JSON lines."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    handler.set_name("maille")
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if h.get_name() != "maille" and not _is_default_stream(h)] + [handler]
    root.setLevel(level)
    # uvicorn's own access log is replaced by the kit's one line per request.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # Drivers chatter at INFO about every connection and heartbeat.
    for name in ("pymongo", "nats", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def _is_default_stream(handler: logging.Handler) -> bool:
    # A plain stream handler left by logging.basicConfig or a library: ours replaces it.
    return type(handler) is logging.StreamHandler


class AccessLog:
    """One JSON access line per request, written in batches.

    A line written (and flushed) on its own costs a system call, more than a proxied request's own work;
    lines are gathered and written every `interval` seconds or `max_bytes`, and at `close()`. The same
    fields as the other log lines (`JsonFormatter`), logger `maille.access`. A process killed outright
    loses at most the last `interval` of access lines, never other logs.
    """

    def __init__(self, service: str, *, stream: Any = None, interval: float = 0.2, max_bytes: int = 64 * 1024) -> None:
        self.service = service
        self.stream = stream
        self.interval = interval
        self.max_bytes = max_bytes
        self._logger = logging.getLogger("maille.access")
        self._lines: list[str] = []
        self._size = 0
        self._timer: Any = None
        self._second = 0
        self._second_text = ""

    def write(self, message: str, *, trace_id: int = 0, span_id: int = 0, **fields: Any) -> None:
        if not self._logger.isEnabledFor(logging.INFO):  # asked each time: logging is set up after this is made
            return
        entry: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": "INFO",
            "service": self.service,
            "logger": "maille.access",
            "message": message,
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        if trace_id:
            entry["trace_id"] = format(trace_id, "032x")
            entry["span_id"] = format(span_id, "016x")
        entry.update(fields)
        self._add(_ENCODE(entry))

    def request(
        self,
        *,
        method: str,
        path: str,
        route: str,
        status: int,
        duration_ms: float,
        caller: str | None,
        upstream: str,
        request_id: str,
        trace_id: int,
        span_id: int,
        lane: bool = False,
    ) -> None:
        """A proxied request's line: the same fields as `write` gives them, put together without a dictionary
        (the gateway writes one for every request of the platform)."""
        if not self._logger.isEnabledFor(logging.INFO):
            return
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        line = (
            f'{{"time": "{self._second_text}.{int((now - second) * 1000):03d}+00:00", "level": "INFO", '
            f'"service": "{self.service}", "logger": "maille.access", "message": '
            f"{_STRING(f'{method} {path} {status}')}, "
            f'"request_id": {_STRING(request_id)}, "trace_id": "{trace_id:032x}", "span_id": "{span_id:016x}", '
            f'"method": {_STRING(method)}, "path": {_STRING(path)}, "route": {_STRING(route)}, "status": {status}, '
            f'"duration_ms": {duration_ms}, "caller": {_STRING(caller) if caller is not None else "null"}, '
            f'"upstream": {_STRING(upstream)}, "lane": {"true" if lane else "false"}}}'
        )
        self._add(line)

    def _add(self, line: str) -> None:
        self._lines.append(line)
        self._size += len(line) + 1
        if self._size >= self.max_bytes:
            self.flush()
        elif self._timer is None:
            import asyncio

            try:
                self._timer = asyncio.get_running_loop().call_later(self.interval, self.flush)
            except RuntimeError:  # no loop: write now
                self.flush()

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        text = "\n".join(self._lines) + "\n"
        self._lines.clear()
        self._size = 0
        stream = self.stream or sys.stdout
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):  # stdout closed at shutdown: nothing else to do with the lines
            pass

    def close(self) -> None:
        self.flush()
