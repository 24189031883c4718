"""The identity service's events: the stream it owns (its subjects are `identity.>`)."""

from maille_kit.bus import Stream

STREAM = Stream(name="IDENTITY", subjects=("identity.>",), description="facts published by the identity service")
STREAMS = (STREAM,)
