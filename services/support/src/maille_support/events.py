"""The stream support owns: what happens to help requests (`proto/maille/support/v1/requests.proto`), told by the
timeline and counted by the observatory."""

from maille_kit.bus import Stream

STREAM = Stream(name="SUPPORT", subjects=("support.>",), description="facts published by the support service")
STREAMS = (STREAM,)
