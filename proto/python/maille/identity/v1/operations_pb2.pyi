from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class ImportReported(_message.Message):
    __slots__ = ("job_id", "state", "file", "records", "created", "updated", "deleted", "rejected", "warnings", "requested_by", "error")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: str
    file: str
    records: int
    created: int
    updated: int
    deleted: int
    rejected: int
    warnings: int
    requested_by: str
    error: str
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[str] = ..., file: _Optional[str] = ..., records: _Optional[int] = ..., created: _Optional[int] = ..., updated: _Optional[int] = ..., deleted: _Optional[int] = ..., rejected: _Optional[int] = ..., warnings: _Optional[int] = ..., requested_by: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class ExportFailed(_message.Message):
    __slots__ = ("night", "reason")
    NIGHT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    night: str
    reason: str
    def __init__(self, night: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
