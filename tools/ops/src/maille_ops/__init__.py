"""maille-ops: Maille's operator commands on a Kubernetes cluster (the `kubernetes` package)."""

__version__ = "0.1.0"
