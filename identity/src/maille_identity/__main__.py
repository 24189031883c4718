"""`python -m maille_identity`: serve the identity service."""

from maille_identity.main import main

main()
