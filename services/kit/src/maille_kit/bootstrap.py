"""`python -m maille_kit.bootstrap <service>`: what a service declares at start — its streams, dead-letter stream
and indexes — made once and the process ends. Helm runs it as a Job before an upgrade rolls the pods (new indexes
are built once, not by every new pod at once) and after an install."""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys

from maille_kit.app import Runtime, ServiceSpec
from maille_kit.settings import ServiceSettings, load_settings

log = logging.getLogger("maille.bootstrap")


def settings_class_of(service: str) -> type[ServiceSettings]:
    """The service's settings class (the one `ServiceSettings` its settings module defines)."""
    settings_module = importlib.import_module(f"maille_{service}.settings")
    classes = [
        v
        for v in vars(settings_module).values()
        if isinstance(v, type) and issubclass(v, ServiceSettings) and v.__module__ == settings_module.__name__
    ]
    if len(classes) != 1:
        raise SystemExit(f"maille_{service}.settings defines {len(classes)} settings classes")
    return classes[0]


def spec_of(service: str) -> ServiceSpec:
    """The service's spec, from its own settings (its MAILLE_<SERVICE>_* variables)."""
    spec: ServiceSpec = importlib.import_module(f"maille_{service}.main").build(
        load_settings(settings_class_of(service))
    )
    return spec


async def bootstrap(spec: ServiceSpec) -> None:
    """Declare the streams the service owns and make its indexes (what its start does first), then disconnect."""
    runtime = Runtime(spec)
    try:
        await runtime.declare()
    finally:
        await runtime.bus.close()
        if runtime.docstore is not None:
            await runtime.docstore.close()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m maille_kit.bootstrap <service>")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    spec = spec_of(args[0])
    asyncio.run(bootstrap(spec))
    log.info(
        "%s: %d stream(s), indexes of %d collection(s) in place", spec.name, len(spec.streams), len(spec.all_indexes)
    )


if __name__ == "__main__":
    main()
