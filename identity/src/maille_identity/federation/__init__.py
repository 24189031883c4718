"""Identity federation: Keycloak as code, upstream IdPs, account linking, partner collectivités."""
