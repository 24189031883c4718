"""The library service's events: the stream it owns (its subjects are `library.>`)."""

from maille_kit.bus import Stream

STREAM = Stream(name="LIBRARY", subjects=("library.>",), description="facts published by the library service")
STREAMS = (STREAM,)
