"""`python -m maille_timeline`: serve the timeline service."""

from maille_timeline.main import main

main()
