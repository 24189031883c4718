"""The app factory: every service is a `ServiceSpec` turned into a FastAPI app with the same lifespan,
middleware, error shape, health routes and /about route, served by `serve` until SIGTERM."""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol, TypeVar

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from pydantic import BaseModel

from maille_kit import directory
from maille_kit.auth import TokenVerifier
from maille_kit.bus import Bus, Stream, dead_letter_stream
from maille_kit.consumer import INDEXES as CONSUMER_INDEXES
from maille_kit.consumer import STARTED, EventConsumer, Handler
from maille_kit.docstore import Docstore, Indexes
from maille_kit.events import Event
from maille_kit.idempotency import IdempotencyMiddleware, Replay, forget_expired, replayed
from maille_kit.logging import setup_logging
from maille_kit.middleware import RequestContextMiddleware
from maille_kit.migrations import Migration, migrate
from maille_kit.outbox import Outbox
from maille_kit.problems import Problem, install_problem_handlers
from maille_kit.settings import ServiceSettings, load_settings, redact_url
from maille_kit.telemetry import observe, serve_metrics, setup_telemetry, shutdown_telemetry
from maille_kit.usage import Uses
from maille_kit.work import INDEXES as WORK_INDEXES
from maille_kit.work import Works

log = logging.getLogger("maille.app")

WATCH_SECONDS = 15.0  # how often the consumers' and dead letters' figures are read for the metrics
SettingsT = TypeVar("SettingsT", bound=ServiceSettings)
PartT = TypeVar("PartT")


class Parts:
    """A running service's parts (its mailbox, its search, its directory copy…), each found by its own type: made
    once at start, handed to routes by `part(Kind)` — no string keys, no positions."""

    def __init__(self) -> None:
        self._by_type: dict[type, object] = {}

    def add(self, *parts: object) -> None:
        for made in parts:
            self._by_type[type(made)] = made

    def get(self, kind: type[PartT]) -> PartT:
        found = self._by_type.get(kind)
        if not isinstance(found, kind):
            raise LookupError(f"this service has no {kind.__name__}")
        return found

    def find(self, kind: type[PartT]) -> PartT | None:
        """The part, or None where this replica runs without it (a feature switched off)."""
        found = self._by_type.get(kind)
        return found if isinstance(found, kind) else None

    async def stop(self, *steps: tuple[type[Any], Callable[[Any], Awaitable[object]]]) -> None:
        """At the service's stop: for each (kind, how) in order, `how(part)` where the service has that part, each
        tried even when one before it failed — `await parts.stop((Background, Background.stop), …)`."""
        for kind, how in steps:
            found = self.find(kind)
            if found is None:
                continue
            try:
                await how(found)
            except Exception as exc:
                log.warning("stopping the %s failed: %s", kind.__name__, exc)


def part(kind: type[PartT]) -> Any:
    """A FastAPI dependency on one of the service's parts: `Annotated[Mailbox, part(Mailbox)]`."""

    # async: a plain function would be run in FastAPI's thread pool, a thread handed each call for a dictionary read.
    async def dependency(request: Request) -> PartT:
        runtime: Runtime = request.app.state.runtime
        return runtime.parts.get(kind)

    return Depends(dependency)


# The service's uses, for a route that tells one: `uses: Told` then `uses.of(Kind.KIND_MAIL_SENT, principal, …)`.
Told = Annotated[Uses, part(Uses)]


class Follower(Protocol):
    """A service's copy of the directory, kept by its directory consumer: the events that arrived together handed over
    together (an event the batch failed on is handed over again alone, as a batch of one — or to the follower's own
    `handle(event)` when it has one)."""

    async def handle_many(self, events: list[Event]) -> None: ...


HOOKS = ("parts", "consumers", "on_start", "on_stop")  # what ServiceSpec.of finds in a service's main module


@dataclass
class ServiceSpec:
    """What makes one deployable: its routers, the streams it owns, its indexes and its consumers."""

    name: str
    version: str
    settings: ServiceSettings
    routers: Sequence[APIRouter] = ()
    streams: Sequence[Stream] = ()
    indexes: Indexes = field(default_factory=dict)
    parts: Callable[[Runtime], Iterable[object]] | None = None  # made at start, before the consumers
    consumers: Callable[[Runtime], Sequence[EventConsumer]] | None = None
    migrations: Sequence[Migration] = ()  # its data's steps between versions (maille_kit.migrations)
    uses_docstore: bool = True
    on_start: Callable[[Runtime], Awaitable[None]] | None = None
    on_stop: Callable[[Runtime], Awaitable[None]] | None = None
    description: str = ""

    @classmethod
    def of(cls, main: str, settings: ServiceSettings, **declared: Any) -> ServiceSpec:
        """A service's spec from its `main` module (pass `__name__`): its package (`maille_<name>`) gives the name,
        the version and the description, the package's `events.STREAMS` the streams it owns, and the module's own
        `parts`, `consumers`, `on_start` and `on_stop`, those it defines, are the service's. `declared`: the rest
        (routers, indexes, migrations…), or any of those named otherwise."""
        module = sys.modules[main]
        package = sys.modules[module.__package__ or main]
        try:
            streams = importlib.import_module(f"{package.__name__}.events").STREAMS
        except ModuleNotFoundError:
            streams = ()
        hooks = {name: getattr(module, name) for name in HOOKS if callable(getattr(module, name, None))}
        return cls(
            **{
                "name": package.__name__.removeprefix("maille_"),
                "version": getattr(package, "__version__", "0"),
                "description": package.__doc__ or "",
                "settings": settings,
                "streams": streams,
                **hooks,
                **declared,
            }
        )

    @property
    def all_indexes(self) -> Indexes:
        """The service's indexes, with those of the kit's parts it uses (its consumers' claims)."""
        kit = {**WORK_INDEXES, **(CONSUMER_INDEXES if self.consumers is not None else {})} if self.uses_docstore else {}
        return {**kit, **self.indexes}


class Runtime:
    """A running service's connections: the bus, the docstore, the outbox and the consumers."""

    def __init__(self, spec: ServiceSpec) -> None:
        self.spec = spec
        self.settings = spec.settings
        self.bus = Bus.of(spec.settings, name=f"maille-{spec.name}")
        self.docstore: Docstore | None = None
        self.outbox: Outbox | None = None
        self.works: Works | None = None
        self.consumers: list[EventConsumer] = []
        # The uses the service tells the observatory (none without the platform's usage key).
        self.uses = Uses(self.bus, key=spec.settings.usage_key.get_secret_value(), source=spec.name)
        self.parts = Parts()
        self._forgetting: asyncio.Task[None] | None = None
        self._watching: asyncio.Task[None] | None = None
        # What the metrics read: per consumer (pending, waiting for an ack, redelivered), the dead letters kept.
        self.consumer_figures: dict[str, tuple[int, int, int]] = {}
        self.dead_letters: int | None = None
        self._unobserve: list[Callable[[], None]] = []

    def consumer(
        self, durable: str, *, stream: str, subjects: tuple[str, ...], handler: Handler, **options: Any
    ) -> EventConsumer:
        """A durable consumer of this service's (its bus and docstore; its name on what it dead-letters)."""
        assert self.docstore is not None
        return EventConsumer(
            self.bus,
            self.docstore,
            service=self.spec.name,
            durable=durable,
            stream=stream,
            subjects=subjects,
            handler=handler,
            **options,
        )

    def directory_consumer(
        self, follower: Follower, *, kept: Iterable[str], subjects: tuple[str, ...] = directory.SUBJECTS
    ) -> EventConsumer:
        """The consumer of identity's directory events for a service keeping a copy of what it needs (`kept`: the
        Person fields it reads): `<service>-directory`, batches handed to the follower, a person's update that
        changes none of those fields passed by."""
        return self.consumer(
            f"{self.spec.name}-directory",
            stream="IDENTITY",
            subjects=subjects,
            handler=getattr(follower, "handle", None) or (lambda event: follower.handle_many([event])),
            batch_handler=follower.handle_many,
            wants=directory.keeping(kept),
            events_per_second=self.settings.directory_events_per_second,
        )

    async def declare(self) -> None:
        """Connect, and declare what the service owns: its indexes and its streams (with its dead letters)."""
        spec, settings = self.spec, self.settings
        if spec.uses_docstore:
            self.docstore = Docstore(
                settings.mongodb_url.get_secret_value(),
                settings.database_name,
                app_name=f"maille-{spec.name}",
                timeout=settings.docstore_timeout,
            )
            await self.docstore.detect()
            await self.docstore.ensure_indexes(spec.all_indexes)
            await migrate(self.docstore, spec.migrations)
        await self.bus.connect(timeout=settings.nats_connect_timeout)
        dead_letters = [dead_letter_stream(spec.name)] if spec.uses_docstore else []
        await self.bus.ensure_streams([*spec.streams, *dead_letters])

    async def start(self) -> None:
        """Connect, declare streams and indexes, start the relay and the consumers."""
        spec, settings = self.spec, self.settings
        await self.declare()
        if self.docstore is not None:
            self.outbox = Outbox(self.docstore, self.bus, source=spec.name, abandoned_after=settings.takeover_seconds)
            self.outbox.start()
            self.works = Works(
                self.docstore,
                self.outbox,
                source=spec.name,
                abandoned_after=settings.takeover_seconds,
                check_every=min(15.0, settings.takeover_seconds / 2),
            )
            self.works.start()
            self._forgetting = asyncio.create_task(self._forget_keys(), name="idempotency-keys-forgotten")
        self.uses.start()
        self.parts.add(
            self.settings, self.bus, self.uses, *(p for p in (self.docstore, self.outbox, self.works) if p is not None)
        )
        if spec.parts is not None:
            self.parts.add(*spec.parts(self))
        if spec.consumers is not None:
            self.consumers = list(spec.consumers(self))
            for consumer in self.consumers:
                await consumer.start()
        if spec.on_start is not None:
            await spec.on_start(self)
        if self.docstore is not None:
            self._watch_bus()
        log.info("started", extra={"version": spec.version, "port": settings.http_port})

    def _watch_bus(self) -> None:
        """Read, every `WATCH_SECONDS`, what JetStream knows of this service's consumers and dead letters, for the
        metrics (a scrape reads the figures kept, never NATS)."""
        service = {"service": self.spec.name}

        def consumers(field: int) -> Callable[[], list[tuple[float, dict[str, str]]]]:
            return lambda: [(figures[field], {"consumer": name}) for name, figures in self.consumer_figures.items()]

        self._unobserve = [
            observe("maille.consumer.pending", consumers(0), description="events stored and not delivered yet"),
            observe("maille.consumer.ack_pending", consumers(1), description="events delivered, not acknowledged yet"),
            observe("maille.consumer.redelivered", consumers(2), description="events delivered more than once"),
            observe(
                "maille.deadletters",
                lambda: [] if self.dead_letters is None else [(self.dead_letters, service)],
                description="events kept in the service's dead-letter stream for an operator",
            ),
        ]
        self._watching = asyncio.create_task(self._watch_forever(), name="bus-watched")

    async def _watch_forever(self) -> None:
        stream = dead_letter_stream(self.spec.name).name
        while True:
            for consumer in [c for c in list(STARTED) if c.bus is self.bus]:  # the service's own, wherever made
                try:
                    info = await self.bus.js.consumer_info(consumer.stream, consumer.durable, timeout=5)
                except Exception as exc:  # NATS away, a consumer not bound yet: the next round
                    log.debug("consumer %s's figures not read: %s", consumer.durable, exc)
                    continue
                self.consumer_figures[consumer.durable] = (
                    info.num_pending or 0,
                    info.num_ack_pending or 0,
                    info.num_redelivered or 0,
                )
            try:
                self.dead_letters = (await asyncio.wait_for(self.bus.js.stream_info(stream), 5)).state.messages
            except Exception as exc:
                log.debug("dead letters not counted: %s", exc)
            await asyncio.sleep(WATCH_SECONDS)

    async def _forget_keys(self) -> None:
        """The Idempotency-Keys past their day, forgotten every hour (by every replica: the delete is idempotent)."""
        while True:
            await asyncio.sleep(3600)
            try:
                assert self.docstore is not None
                await forget_expired(self.docstore)
            except Exception as exc:  # the docstore away for a moment: the next hour
                log.warning("idempotency keys not forgotten: %s", exc)

    async def stop(self) -> None:
        """Stop consuming, relay what can be relayed, close the connections: each step tried even when one before it
        failed (a start that failed half-way is stopped too, and the process ends)."""
        for task in (self._forgetting, self._watching):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        for unobserve in self._unobserve:
            unobserve()
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        if self.spec.on_stop is not None:
            on_stop = self.spec.on_stop
            steps.append(("the service's own parts", lambda: on_stop(self)))
        steps += [(f"consumer {consumer.durable}", consumer.stop) for consumer in self.consumers]
        steps.append(("uses", self.uses.stop))
        if self.works is not None:
            steps.append(("units of work", self.works.stop))
        if self.outbox is not None:
            steps.append(("outbox", self.outbox.stop))
        steps.append(("NATS", self.bus.close))
        if self.docstore is not None:
            steps.append(("docstore", self.docstore.close))
        for what, step in steps:
            try:
                await step()
            except Exception as exc:
                log.warning("stopping %s failed: %s", what, exc)
        log.info("stopped")

    async def readiness(self) -> dict[str, bool]:
        """Whether each part the service needs answers now."""
        # A blip of NATS (a node restarting, a reconnection) must not take every replica out of its Service at once:
        # the requests that need no NATS go on, those that do wait for the reconnection or get a 503 of their own.
        checks = {"nats": self.bus.down_for() < self.settings.nats_grace_seconds}
        if self.docstore is not None:
            try:
                checks["docstore"] = await asyncio.wait_for(self.docstore.ping(timeout=2), timeout=3)
            except TimeoutError:
                checks["docstore"] = False
        return checks


def get_runtime(request: Request) -> Runtime:
    """FastAPI dependency: the running service's `Runtime`."""
    return request.app.state.runtime


class NatsInfo(BaseModel):
    url: str
    connected: bool
    server: str | None
    jetstream: bool


class DocstoreInfo(BaseModel):
    url: str
    database: str
    connected: bool
    server: str | None


class About(BaseModel):
    """What a service is and what it is connected to."""

    name: str
    version: str
    build: str
    environment: str
    nats: NatsInfo
    docstore: DocstoreInfo | None


def _health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @router.get(
        "/readyz", summary="NATS and the docstore answer", responses={503: {"description": "a dependency is down"}}
    )
    async def readyz(request: Request) -> dict[str, Any]:
        runtime = get_runtime(request)
        checks = await runtime.readiness()
        if not all(checks.values()):
            down = ", ".join(name for name, ok in checks.items() if not ok)
            raise Problem(503, f"not ready: {down} unreachable", headers={"Retry-After": "5"}, checks=checks)
        return {"status": "ready", "checks": checks}

    return router


def _about_router(name: str) -> APIRouter:
    router = APIRouter(prefix=f"/api/{name}/v1", tags=["about"])

    @router.get("/about", response_model=About, summary="What this service is and what it is connected to")
    async def about(request: Request) -> About:
        runtime = get_runtime(request)
        settings, bus, docstore = runtime.settings, runtime.bus, runtime.docstore
        nats_info = NatsInfo(
            url=redact_url(settings.nats_url),
            connected=bus.connected,
            server=bus.server_name,
            jetstream=bus.connected and await bus.jetstream_enabled(),
        )
        docstore_info = None
        if docstore is not None:
            connected = await docstore.ping()
            docstore_info = DocstoreInfo(
                url=docstore.url,
                database=settings.database_name,
                connected=connected,
                server=await docstore.server_version() if connected else None,
            )
        return About(
            name=runtime.spec.name,
            version=runtime.spec.version,
            build=settings.build,
            environment=settings.environment,
            nats=nats_info,
            docstore=docstore_info,
        )

    return router


def create_app(spec: ServiceSpec) -> FastAPI:
    """The FastAPI app of a service: lifespan, middleware, problem handlers, health and /about."""
    setup_logging(spec.name, spec.settings.log_level)
    setup_telemetry(service=spec.name, version=spec.version, endpoint=spec.settings.otlp_endpoint)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(spec)
        app.state.runtime = runtime
        try:
            await runtime.start()
        except BaseException:
            await runtime.stop()
            raise
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title=f"Maille {spec.name}",
        version=spec.version,
        description=spec.description,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # The kit's middleware traces and measures each request (with the gateway's fast lane, the same way):
        # FastAPI's own telemetry would record every one twice.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.token_verifier = TokenVerifier(
        issuer=spec.settings.auth_issuer, audience=spec.settings.audience, jwks_url=spec.settings.auth_jwks_url
    )
    install_problem_handlers(app)
    app.add_exception_handler(Replay, _on_replay)
    app.include_router(_health_router())
    app.include_router(_about_router(spec.name))
    for router in spec.routers:
        app.include_router(router)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(RequestContextMiddleware, log_every=spec.settings.access_log == "all")
    _declare_problems(app)
    return app


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An error (RFC 9457): `type` names its page (`/problems/<slug>`), `detail` says what is wrong.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "the problem's page, e.g. /problems/not-found"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "the path asked"},
        "request_id": {"type": "string", "description": "to give the support"},
        "errors": {
            "type": "array",
            "description": "each field refused, and why",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}


def _declare_problems(app: FastAPI) -> None:
    """Every operation's errors declared in the OpenAPI document as what they are: problem documents (4XX, 5XX,
    and FastAPI's 422 answered as one)."""
    plain = app.openapi

    def with_problems() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = plain()
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                responses = operation.setdefault("responses", {})
                if "422" in responses:
                    responses["422"] = {"description": "a value refused: `errors` names each field", "content": problem}
                responses.setdefault("4XX", {"description": "the request refused (see `type`)", "content": problem})
                responses.setdefault("5XX", {"description": "the service unable to answer now", "content": problem})
        for unused in ("HTTPValidationError", "ValidationError"):
            schema["components"]["schemas"].pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = with_problems  # type: ignore[method-assign]


async def _on_replay(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Replay)
    status, headers, body = replayed(exc.kept)
    response = Response(body, status_code=status)
    kept = [h for h in headers if h[0].lower() != b"content-length"]
    response.raw_headers = [*kept, (b"content-length", str(len(body)).encode())]
    return response


def serve(
    app: Any,
    settings: ServiceSettings,
    sockets: list[Any] | None = None,
    *,
    http: Any = "auto",
    headers: list[tuple[str, str]] | None = None,
) -> None:
    """Serve `app` until SIGINT or SIGTERM, then finish the requests in hand and stop cleanly (on
    `sockets` when given, else on the settings' host and port; `http`: uvicorn's HTTP protocol, or a class of it;
    `headers`: sent with every answer)."""
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        server_header=False,
        http=http,
        headers=headers or [],
    )
    server = uvicorn.Server(config)
    # uvicorn hands the signal back to the process once it has shut down gracefully: exit 0 then.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    # The process's metrics, on their own port, once the app has set up its telemetry (create_app did).
    metrics = serve_metrics(settings.http_host, settings.metrics_port)
    try:
        server.run(sockets=sockets)
    finally:
        if metrics is not None:
            metrics.close()
        shutdown_telemetry()
    if not server.started:
        sys.exit(3)  # could not start (a dependency unreachable, a port taken): said in the log above


def _exit_cleanly(signum: int, frame: object) -> None:
    sys.exit(0)


def entry_points(
    build: Callable[[SettingsT], ServiceSpec], settings_type: type[SettingsT]
) -> tuple[Callable[[SettingsT | None], FastAPI], Callable[[], None]]:
    """A service's `app(settings=None)`, its ASGI app (settings from the environment when none are given), and its
    `main()`, which serves it until SIGTERM: `app, main = entry_points(build, CatalogSettings)`."""

    def app(settings: SettingsT | None = None) -> FastAPI:
        return create_app(build(settings or load_settings(settings_type)))

    def main() -> None:
        settings = load_settings(settings_type)
        serve(app(settings), settings)

    return app, main
