"""The messaging service's events: the stream it owns (its subjects are `messaging.>`)."""

from maille_kit.bus import Stream

STREAM = Stream(name="MESSAGING", subjects=("messaging.>",), description="facts published by the messaging service")
STREAMS = (STREAM,)
