"""The catalog service's events: the stream it owns (its subjects are `catalog.>`)."""

from maille_kit.bus import Stream

STREAM = Stream(name="CATALOG", subjects=("catalog.>",), description="facts published by the catalog service")
STREAMS = (STREAM,)
