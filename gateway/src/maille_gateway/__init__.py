"""The gateway: Maille's only public HTTP entry, routing `/api/<service>/…` to the services."""

__version__ = "0.1.0"
