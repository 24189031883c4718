"""`python -m maille_observatory`: serve the observatory."""

from maille_observatory.main import main

main()
