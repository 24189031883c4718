"""OpenTelemetry traces and metrics: exported over OTLP/HTTP when a collector is configured.

W3C trace context is carried over HTTP (the kit's middleware and HTTP client) and over NATS
message headers (`inject_headers` / `extract_context`).
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import metrics, propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_providers: tuple[TracerProvider, MeterProvider] | None = None


def setup_telemetry(*, service: str, version: str, endpoint: str | None) -> None:
    """Install the process's tracer and meter providers, exporting to `endpoint` when it is set."""
    global _providers
    if _providers is not None:
        return
    resource = Resource.create(
        {"service.name": f"maille-{service}", "service.version": version, "service.namespace": "maille"}
    )
    tracer_provider = TracerProvider(resource=resource)
    readers = []
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        base = endpoint.rstrip("/")
        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{base}/v1/metrics")))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    _providers = (tracer_provider, meter_provider)


def shutdown_telemetry() -> None:
    """Flush and stop the exporters (at process exit)."""
    global _providers
    if _providers is None:
        return
    tracer_provider, meter_provider = _providers
    tracer_provider.shutdown()
    meter_provider.shutdown()
    _providers = None


def tracer() -> trace.Tracer:
    """The kit's tracer."""
    return trace.get_tracer("maille")


def meter() -> metrics.Meter:
    """The kit's meter."""
    return metrics.get_meter("maille")


def inject_headers(headers: dict[str, str]) -> dict[str, str]:
    """Add the current W3C trace context (`traceparent`, `tracestate`) to outgoing headers."""
    propagate.inject(headers)
    return headers


def extract_context(headers: Mapping[str, str] | None) -> Context:
    """The trace context carried by incoming headers (HTTP or NATS)."""
    return propagate.extract(dict(headers or {}))
