"""`python -m maille_support`: serve the support service."""

from maille_support.main import main

main()
