"""The stream the observatory owns: the uses every service tells (`proto/maille/observatory/v1/usage.proto`). It is
the raw record, and it keeps uses 30 days at most (what the processing's register says); the rollups are kept."""

from maille_kit.bus import Stream

RAW_DAYS = 30
STREAM = Stream(
    name="OBSERVATORY",
    subjects=("observatory.>",),
    max_age_seconds=RAW_DAYS * 24 * 3600,
    # A batch of uses sent again after a lost acknowledgement carries the same id: dropped if within the hour.
    duplicate_window_seconds=3600,
    description="the uses the services tell the observatory (pseudonymous), kept 30 days",
)
STREAMS = (STREAM,)
