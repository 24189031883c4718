"""`python -m maille_library`: serve the library service."""

from maille_library.main import main

main()
