from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Concept(_message.Message):
    __slots__ = ("uri", "label")
    URI_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    uri: str
    label: str
    def __init__(self, uri: _Optional[str] = ..., label: _Optional[str] = ...) -> None: ...

class Resource(_message.Message):
    __slots__ = ("id", "name", "editor_id", "editor_name", "thumbnail_url", "access_url", "presentation_code", "presentation_label", "pedagogical_types", "document_types", "educational_levels", "teaching_domains", "version")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EDITOR_ID_FIELD_NUMBER: _ClassVar[int]
    EDITOR_NAME_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_URL_FIELD_NUMBER: _ClassVar[int]
    ACCESS_URL_FIELD_NUMBER: _ClassVar[int]
    PRESENTATION_CODE_FIELD_NUMBER: _ClassVar[int]
    PRESENTATION_LABEL_FIELD_NUMBER: _ClassVar[int]
    PEDAGOGICAL_TYPES_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    EDUCATIONAL_LEVELS_FIELD_NUMBER: _ClassVar[int]
    TEACHING_DOMAINS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    editor_id: str
    editor_name: str
    thumbnail_url: str
    access_url: str
    presentation_code: str
    presentation_label: str
    pedagogical_types: _containers.RepeatedCompositeFieldContainer[Concept]
    document_types: _containers.RepeatedCompositeFieldContainer[Concept]
    educational_levels: _containers.RepeatedCompositeFieldContainer[Concept]
    teaching_domains: _containers.RepeatedCompositeFieldContainer[Concept]
    version: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., editor_id: _Optional[str] = ..., editor_name: _Optional[str] = ..., thumbnail_url: _Optional[str] = ..., access_url: _Optional[str] = ..., presentation_code: _Optional[str] = ..., presentation_label: _Optional[str] = ..., pedagogical_types: _Optional[_Iterable[_Union[Concept, _Mapping]]] = ..., document_types: _Optional[_Iterable[_Union[Concept, _Mapping]]] = ..., educational_levels: _Optional[_Iterable[_Union[Concept, _Mapping]]] = ..., teaching_domains: _Optional[_Iterable[_Union[Concept, _Mapping]]] = ..., version: _Optional[int] = ...) -> None: ...

class ResourcePublished(_message.Message):
    __slots__ = ("resource",)
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    resource: Resource
    def __init__(self, resource: _Optional[_Union[Resource, _Mapping]] = ...) -> None: ...

class ResourceUpdated(_message.Message):
    __slots__ = ("resource",)
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    resource: Resource
    def __init__(self, resource: _Optional[_Union[Resource, _Mapping]] = ...) -> None: ...

class ResourceWithdrawn(_message.Message):
    __slots__ = ("id", "editor_id", "version")
    ID_FIELD_NUMBER: _ClassVar[int]
    EDITOR_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    editor_id: str
    version: int
    def __init__(self, id: _Optional[str] = ..., editor_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...
