"""Support: help requests from the classroom to the right desk — the school's digital referents first, then the
académie's support or the collectivité's desk (and their Redmine), with a knowledge base that answers before anyone
has to ask."""

__version__ = "0.1.0"
