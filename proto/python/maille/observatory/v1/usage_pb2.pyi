from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KIND_UNSPECIFIED: _ClassVar[Kind]
    KIND_SIGN_IN: _ClassVar[Kind]
    KIND_SERVICE_OPENED: _ClassVar[Kind]
    KIND_MAIL_SENT: _ClassVar[Kind]
    KIND_MAIL_READ: _ClassVar[Kind]
    KIND_RESOURCE_OPENED: _ClassVar[Kind]
    KIND_CDI_SEARCH: _ClassVar[Kind]
    KIND_CDI_LOAN: _ClassVar[Kind]
    KIND_NEWS_READ: _ClassVar[Kind]
    KIND_SUPPORT_OPENED: _ClassVar[Kind]
    KIND_SUPPORT_ANSWERED: _ClassVar[Kind]
KIND_UNSPECIFIED: Kind
KIND_SIGN_IN: Kind
KIND_SERVICE_OPENED: Kind
KIND_MAIL_SENT: Kind
KIND_MAIL_READ: Kind
KIND_RESOURCE_OPENED: Kind
KIND_CDI_SEARCH: Kind
KIND_CDI_LOAN: Kind
KIND_NEWS_READ: Kind
KIND_SUPPORT_OPENED: Kind
KIND_SUPPORT_ANSWERED: Kind

class Use(_message.Message):
    __slots__ = ("id", "at_ms", "kind", "school", "profile", "service", "idp", "detail", "pseudonym", "vendor", "resource", "classes", "seconds")
    ID_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SCHOOL_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    IDP_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    PSEUDONYM_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    at_ms: int
    kind: Kind
    school: str
    profile: str
    service: str
    idp: str
    detail: str
    pseudonym: str
    vendor: str
    resource: str
    classes: _containers.RepeatedScalarFieldContainer[str]
    seconds: int
    def __init__(self, id: _Optional[str] = ..., at_ms: _Optional[int] = ..., kind: _Optional[_Union[Kind, str]] = ..., school: _Optional[str] = ..., profile: _Optional[str] = ..., service: _Optional[str] = ..., idp: _Optional[str] = ..., detail: _Optional[str] = ..., pseudonym: _Optional[str] = ..., vendor: _Optional[str] = ..., resource: _Optional[str] = ..., classes: _Optional[_Iterable[str]] = ..., seconds: _Optional[int] = ...) -> None: ...

class UseRecorded(_message.Message):
    __slots__ = ("uses",)
    USES_FIELD_NUMBER: _ClassVar[int]
    uses: _containers.RepeatedCompositeFieldContainer[Use]
    def __init__(self, uses: _Optional[_Iterable[_Union[Use, _Mapping]]] = ...) -> None: ...
