from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Request(_message.Message):
    __slots__ = ("id", "subject", "category", "uai", "desk", "profile")
    ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    UAI_FIELD_NUMBER: _ClassVar[int]
    DESK_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    id: str
    subject: str
    category: str
    uai: str
    desk: str
    profile: str
    def __init__(self, id: _Optional[str] = ..., subject: _Optional[str] = ..., category: _Optional[str] = ..., uai: _Optional[str] = ..., desk: _Optional[str] = ..., profile: _Optional[str] = ...) -> None: ...

class RequestOpened(_message.Message):
    __slots__ = ("request", "tell")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    TELL_FIELD_NUMBER: _ClassVar[int]
    request: Request
    tell: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, request: _Optional[_Union[Request, _Mapping]] = ..., tell: _Optional[_Iterable[str]] = ...) -> None: ...

class RequestAnswered(_message.Message):
    __slots__ = ("request", "seconds")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    request: Request
    seconds: int
    def __init__(self, request: _Optional[_Union[Request, _Mapping]] = ..., seconds: _Optional[int] = ...) -> None: ...

class RequestReplied(_message.Message):
    __slots__ = ("request", "person_id", "by")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    request: Request
    person_id: str
    by: str
    def __init__(self, request: _Optional[_Union[Request, _Mapping]] = ..., person_id: _Optional[str] = ..., by: _Optional[str] = ...) -> None: ...

class RequestStatusChanged(_message.Message):
    __slots__ = ("request", "person_id", "status")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    request: Request
    person_id: str
    status: str
    def __init__(self, request: _Optional[_Union[Request, _Mapping]] = ..., person_id: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class RequestEscalated(_message.Message):
    __slots__ = ("request", "tell")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    TELL_FIELD_NUMBER: _ClassVar[int]
    request: Request
    tell: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, request: _Optional[_Union[Request, _Mapping]] = ..., tell: _Optional[_Iterable[str]] = ...) -> None: ...

class RequestOverdue(_message.Message):
    __slots__ = ("request", "clock", "tell")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    CLOCK_FIELD_NUMBER: _ClassVar[int]
    TELL_FIELD_NUMBER: _ClassVar[int]
    request: Request
    clock: str
    tell: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, request: _Optional[_Union[Request, _Mapping]] = ..., clock: _Optional[str] = ..., tell: _Optional[_Iterable[str]] = ...) -> None: ...
