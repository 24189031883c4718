import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Licences(_message.Message):
    __slots__ = ("number", "unlimited")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    UNLIMITED_FIELD_NUMBER: _ClassVar[int]
    number: int
    unlimited: bool
    def __init__(self, number: _Optional[int] = ..., unlimited: _Optional[bool] = ...) -> None: ...

class Subscription(_message.Message):
    __slots__ = ("id", "resource_id", "resource_label", "editor_id", "distributor_id", "valid_from", "valid_until", "uais", "assignment_type", "transferable", "publics", "global_licences", "teacher_licences", "pupil_licences", "librarian_licences", "other_staff_licences", "removed_uais", "version")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_LABEL_FIELD_NUMBER: _ClassVar[int]
    EDITOR_ID_FIELD_NUMBER: _ClassVar[int]
    DISTRIBUTOR_ID_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    UAIS_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TRANSFERABLE_FIELD_NUMBER: _ClassVar[int]
    PUBLICS_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_LICENCES_FIELD_NUMBER: _ClassVar[int]
    TEACHER_LICENCES_FIELD_NUMBER: _ClassVar[int]
    PUPIL_LICENCES_FIELD_NUMBER: _ClassVar[int]
    LIBRARIAN_LICENCES_FIELD_NUMBER: _ClassVar[int]
    OTHER_STAFF_LICENCES_FIELD_NUMBER: _ClassVar[int]
    REMOVED_UAIS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    resource_id: str
    resource_label: str
    editor_id: str
    distributor_id: str
    valid_from: _timestamp_pb2.Timestamp
    valid_until: _timestamp_pb2.Timestamp
    uais: _containers.RepeatedScalarFieldContainer[str]
    assignment_type: str
    transferable: bool
    publics: _containers.RepeatedScalarFieldContainer[str]
    global_licences: Licences
    teacher_licences: Licences
    pupil_licences: Licences
    librarian_licences: Licences
    other_staff_licences: Licences
    removed_uais: _containers.RepeatedScalarFieldContainer[str]
    version: int
    def __init__(self, id: _Optional[str] = ..., resource_id: _Optional[str] = ..., resource_label: _Optional[str] = ..., editor_id: _Optional[str] = ..., distributor_id: _Optional[str] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., uais: _Optional[_Iterable[str]] = ..., assignment_type: _Optional[str] = ..., transferable: _Optional[bool] = ..., publics: _Optional[_Iterable[str]] = ..., global_licences: _Optional[_Union[Licences, _Mapping]] = ..., teacher_licences: _Optional[_Union[Licences, _Mapping]] = ..., pupil_licences: _Optional[_Union[Licences, _Mapping]] = ..., librarian_licences: _Optional[_Union[Licences, _Mapping]] = ..., other_staff_licences: _Optional[_Union[Licences, _Mapping]] = ..., removed_uais: _Optional[_Iterable[str]] = ..., version: _Optional[int] = ...) -> None: ...

class SubscriptionCreated(_message.Message):
    __slots__ = ("subscription",)
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    subscription: Subscription
    def __init__(self, subscription: _Optional[_Union[Subscription, _Mapping]] = ...) -> None: ...

class SubscriptionUpdated(_message.Message):
    __slots__ = ("subscription",)
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    subscription: Subscription
    def __init__(self, subscription: _Optional[_Union[Subscription, _Mapping]] = ...) -> None: ...

class SubscriptionDeleted(_message.Message):
    __slots__ = ("id", "resource_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    resource_id: str
    def __init__(self, id: _Optional[str] = ..., resource_id: _Optional[str] = ...) -> None: ...

class SubscriptionExpired(_message.Message):
    __slots__ = ("id", "resource_id", "valid_until")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    id: str
    resource_id: str
    valid_until: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., resource_id: _Optional[str] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AssignmentChanged(_message.Message):
    __slots__ = ("subscription_id", "resource_id", "uai", "assigned_ids", "released_ids", "by")
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    UAI_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_IDS_FIELD_NUMBER: _ClassVar[int]
    RELEASED_IDS_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    subscription_id: str
    resource_id: str
    uai: str
    assigned_ids: _containers.RepeatedScalarFieldContainer[str]
    released_ids: _containers.RepeatedScalarFieldContainer[str]
    by: str
    def __init__(self, subscription_id: _Optional[str] = ..., resource_id: _Optional[str] = ..., uai: _Optional[str] = ..., assigned_ids: _Optional[_Iterable[str]] = ..., released_ids: _Optional[_Iterable[str]] = ..., by: _Optional[str] = ...) -> None: ...
