from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GroupKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GROUP_KIND_UNSPECIFIED: _ClassVar[GroupKind]
    GROUP_KIND_CLASS: _ClassVar[GroupKind]
    GROUP_KIND_GROUP: _ClassVar[GroupKind]
GROUP_KIND_UNSPECIFIED: GroupKind
GROUP_KIND_CLASS: GroupKind
GROUP_KIND_GROUP: GroupKind

class Structure(_message.Message):
    __slots__ = ("id", "uai", "name", "type", "contract", "seat_id", "academy")
    ID_FIELD_NUMBER: _ClassVar[int]
    UAI_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_FIELD_NUMBER: _ClassVar[int]
    SEAT_ID_FIELD_NUMBER: _ClassVar[int]
    ACADEMY_FIELD_NUMBER: _ClassVar[int]
    id: str
    uai: str
    name: str
    type: str
    contract: str
    seat_id: str
    academy: str
    def __init__(self, id: _Optional[str] = ..., uai: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., contract: _Optional[str] = ..., seat_id: _Optional[str] = ..., academy: _Optional[str] = ...) -> None: ...

class StructureCreated(_message.Message):
    __slots__ = ("structure",)
    STRUCTURE_FIELD_NUMBER: _ClassVar[int]
    structure: Structure
    def __init__(self, structure: _Optional[_Union[Structure, _Mapping]] = ...) -> None: ...

class StructureUpdated(_message.Message):
    __slots__ = ("structure",)
    STRUCTURE_FIELD_NUMBER: _ClassVar[int]
    structure: Structure
    def __init__(self, structure: _Optional[_Union[Structure, _Mapping]] = ...) -> None: ...

class StructureDeleted(_message.Message):
    __slots__ = ("id", "uai")
    ID_FIELD_NUMBER: _ClassVar[int]
    UAI_FIELD_NUMBER: _ClassVar[int]
    id: str
    uai: str
    def __init__(self, id: _Optional[str] = ..., uai: _Optional[str] = ...) -> None: ...

class Group(_message.Message):
    __slots__ = ("id", "structure_id", "code", "label", "kind", "class_ids")
    ID_FIELD_NUMBER: _ClassVar[int]
    STRUCTURE_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CLASS_IDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    structure_id: str
    code: str
    label: str
    kind: GroupKind
    class_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., structure_id: _Optional[str] = ..., code: _Optional[str] = ..., label: _Optional[str] = ..., kind: _Optional[_Union[GroupKind, str]] = ..., class_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GroupCreated(_message.Message):
    __slots__ = ("group",)
    GROUP_FIELD_NUMBER: _ClassVar[int]
    group: Group
    def __init__(self, group: _Optional[_Union[Group, _Mapping]] = ...) -> None: ...

class GroupUpdated(_message.Message):
    __slots__ = ("group",)
    GROUP_FIELD_NUMBER: _ClassVar[int]
    group: Group
    def __init__(self, group: _Optional[_Union[Group, _Mapping]] = ...) -> None: ...

class GroupDeleted(_message.Message):
    __slots__ = ("id", "structure_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    STRUCTURE_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    structure_id: str
    def __init__(self, id: _Optional[str] = ..., structure_id: _Optional[str] = ...) -> None: ...

class Profile(_message.Message):
    __slots__ = ("structure_id", "uai", "code")
    STRUCTURE_ID_FIELD_NUMBER: _ClassVar[int]
    UAI_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    structure_id: str
    uai: str
    code: str
    def __init__(self, structure_id: _Optional[str] = ..., uai: _Optional[str] = ..., code: _Optional[str] = ...) -> None: ...

class Relative(_message.Message):
    __slots__ = ("person_id", "legal", "financial", "contact")
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    LEGAL_FIELD_NUMBER: _ClassVar[int]
    FINANCIAL_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    person_id: str
    legal: bool
    financial: bool
    contact: bool
    def __init__(self, person_id: _Optional[str] = ..., legal: _Optional[bool] = ..., financial: _Optional[bool] = ..., contact: _Optional[bool] = ...) -> None: ...

class Person(_message.Message):
    __slots__ = ("id", "last_name", "first_name", "profiles", "group_ids", "relatives", "children", "functions", "head_teacher_of", "emails", "detached")
    ID_FIELD_NUMBER: _ClassVar[int]
    LAST_NAME_FIELD_NUMBER: _ClassVar[int]
    FIRST_NAME_FIELD_NUMBER: _ClassVar[int]
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    GROUP_IDS_FIELD_NUMBER: _ClassVar[int]
    RELATIVES_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    FUNCTIONS_FIELD_NUMBER: _ClassVar[int]
    HEAD_TEACHER_OF_FIELD_NUMBER: _ClassVar[int]
    EMAILS_FIELD_NUMBER: _ClassVar[int]
    DETACHED_FIELD_NUMBER: _ClassVar[int]
    id: str
    last_name: str
    first_name: str
    profiles: _containers.RepeatedCompositeFieldContainer[Profile]
    group_ids: _containers.RepeatedScalarFieldContainer[str]
    relatives: _containers.RepeatedCompositeFieldContainer[Relative]
    children: _containers.RepeatedScalarFieldContainer[str]
    functions: _containers.RepeatedScalarFieldContainer[str]
    head_teacher_of: _containers.RepeatedScalarFieldContainer[str]
    emails: _containers.RepeatedScalarFieldContainer[str]
    detached: bool
    def __init__(self, id: _Optional[str] = ..., last_name: _Optional[str] = ..., first_name: _Optional[str] = ..., profiles: _Optional[_Iterable[_Union[Profile, _Mapping]]] = ..., group_ids: _Optional[_Iterable[str]] = ..., relatives: _Optional[_Iterable[_Union[Relative, _Mapping]]] = ..., children: _Optional[_Iterable[str]] = ..., functions: _Optional[_Iterable[str]] = ..., head_teacher_of: _Optional[_Iterable[str]] = ..., emails: _Optional[_Iterable[str]] = ..., detached: _Optional[bool] = ...) -> None: ...

class PersonCreated(_message.Message):
    __slots__ = ("person",)
    PERSON_FIELD_NUMBER: _ClassVar[int]
    person: Person
    def __init__(self, person: _Optional[_Union[Person, _Mapping]] = ...) -> None: ...

class PersonUpdated(_message.Message):
    __slots__ = ("person", "changed")
    PERSON_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    person: Person
    changed: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, person: _Optional[_Union[Person, _Mapping]] = ..., changed: _Optional[_Iterable[str]] = ...) -> None: ...

class PersonDeleted(_message.Message):
    __slots__ = ("id", "erased")
    ID_FIELD_NUMBER: _ClassVar[int]
    ERASED_FIELD_NUMBER: _ClassVar[int]
    id: str
    erased: bool
    def __init__(self, id: _Optional[str] = ..., erased: _Optional[bool] = ...) -> None: ...
