"""`python -m maille_catalog`: serve the catalog service."""

from maille_catalog.main import main

main()
