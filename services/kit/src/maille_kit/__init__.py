"""The Maille kit: the one place for what every service shares and nothing else."""

__version__ = "0.1.0"
