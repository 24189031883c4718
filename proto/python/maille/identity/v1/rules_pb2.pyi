from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RulesError(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RULES_ERROR_UNSPECIFIED: _ClassVar[RulesError]
    RULES_ERROR_MALFORMED_REQUEST: _ClassVar[RulesError]
    RULES_ERROR_UNKNOWN_SENDER: _ClassVar[RulesError]
RULES_ERROR_UNSPECIFIED: RulesError
RULES_ERROR_MALFORMED_REQUEST: RulesError
RULES_ERROR_UNKNOWN_SENDER: RulesError

class CanWriteRequest(_message.Message):
    __slots__ = ("tenant", "sender_id", "recipient_ids")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_IDS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    sender_id: str
    recipient_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tenant: _Optional[str] = ..., sender_id: _Optional[str] = ..., recipient_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CanWriteResponse(_message.Message):
    __slots__ = ("refused_ids", "error", "error_code")
    REFUSED_IDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    refused_ids: _containers.RepeatedScalarFieldContainer[str]
    error: str
    error_code: RulesError
    def __init__(self, refused_ids: _Optional[_Iterable[str]] = ..., error: _Optional[str] = ..., error_code: _Optional[_Union[RulesError, str]] = ...) -> None: ...

class VisiblesRequest(_message.Message):
    __slots__ = ("tenant", "sender_id", "text", "limit", "with_groups")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    WITH_GROUPS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    sender_id: str
    text: str
    limit: int
    with_groups: bool
    def __init__(self, tenant: _Optional[str] = ..., sender_id: _Optional[str] = ..., text: _Optional[str] = ..., limit: _Optional[int] = ..., with_groups: _Optional[bool] = ...) -> None: ...

class Visible(_message.Message):
    __slots__ = ("id", "last_name", "first_name", "profiles")
    ID_FIELD_NUMBER: _ClassVar[int]
    LAST_NAME_FIELD_NUMBER: _ClassVar[int]
    FIRST_NAME_FIELD_NUMBER: _ClassVar[int]
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    id: str
    last_name: str
    first_name: str
    profiles: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., last_name: _Optional[str] = ..., first_name: _Optional[str] = ..., profiles: _Optional[_Iterable[str]] = ...) -> None: ...

class VisibleGroup(_message.Message):
    __slots__ = ("id", "name", "size")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    size: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class VisiblesResponse(_message.Message):
    __slots__ = ("persons", "error", "groups", "error_code")
    PERSONS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    persons: _containers.RepeatedCompositeFieldContainer[Visible]
    error: str
    groups: _containers.RepeatedCompositeFieldContainer[VisibleGroup]
    error_code: RulesError
    def __init__(self, persons: _Optional[_Iterable[_Union[Visible, _Mapping]]] = ..., error: _Optional[str] = ..., groups: _Optional[_Iterable[_Union[VisibleGroup, _Mapping]]] = ..., error_code: _Optional[_Union[RulesError, str]] = ...) -> None: ...

class ResolveRequest(_message.Message):
    __slots__ = ("tenant", "sender_id", "person_ids", "group_ids")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    PERSON_IDS_FIELD_NUMBER: _ClassVar[int]
    GROUP_IDS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    sender_id: str
    person_ids: _containers.RepeatedScalarFieldContainer[str]
    group_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tenant: _Optional[str] = ..., sender_id: _Optional[str] = ..., person_ids: _Optional[_Iterable[str]] = ..., group_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ResolvedGroup(_message.Message):
    __slots__ = ("id", "name", "member_ids")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEMBER_IDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    member_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., member_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ResolveResponse(_message.Message):
    __slots__ = ("persons", "groups", "refused_ids", "unknown_ids", "refused_group_ids", "unknown_group_ids", "error", "sender", "error_code")
    PERSONS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    REFUSED_IDS_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_IDS_FIELD_NUMBER: _ClassVar[int]
    REFUSED_GROUP_IDS_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_GROUP_IDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    persons: _containers.RepeatedCompositeFieldContainer[Visible]
    groups: _containers.RepeatedCompositeFieldContainer[ResolvedGroup]
    refused_ids: _containers.RepeatedScalarFieldContainer[str]
    unknown_ids: _containers.RepeatedScalarFieldContainer[str]
    refused_group_ids: _containers.RepeatedScalarFieldContainer[str]
    unknown_group_ids: _containers.RepeatedScalarFieldContainer[str]
    error: str
    sender: Visible
    error_code: RulesError
    def __init__(self, persons: _Optional[_Iterable[_Union[Visible, _Mapping]]] = ..., groups: _Optional[_Iterable[_Union[ResolvedGroup, _Mapping]]] = ..., refused_ids: _Optional[_Iterable[str]] = ..., unknown_ids: _Optional[_Iterable[str]] = ..., refused_group_ids: _Optional[_Iterable[str]] = ..., unknown_group_ids: _Optional[_Iterable[str]] = ..., error: _Optional[str] = ..., sender: _Optional[_Union[Visible, _Mapping]] = ..., error_code: _Optional[_Union[RulesError, str]] = ...) -> None: ...

class RulesChanged(_message.Message):
    __slots__ = ("uai", "reset")
    UAI_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    uai: str
    reset: bool
    def __init__(self, uai: _Optional[str] = ..., reset: _Optional[bool] = ...) -> None: ...
