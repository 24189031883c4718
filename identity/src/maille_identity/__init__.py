"""Identity federation: the school directory (AAF), Keycloak as code, account linking, communication rules and the GAR
export."""

__version__ = "0.1.0"
