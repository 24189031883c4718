"""`python -m maille_gateway`: serve the gateway."""

from maille_gateway.main import main

main()
