"""`python -m maille_messaging`: serve the messaging service."""

from maille_messaging.main import main

main()
