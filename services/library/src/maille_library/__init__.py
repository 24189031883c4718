"""The documentation connector: PMB catalogue search across a reader's schools, loans, reservations, reader sync and
sign-on into the OPAC."""

__version__ = "0.1.0"
