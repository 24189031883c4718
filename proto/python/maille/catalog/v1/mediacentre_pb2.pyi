from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class FavouriteChanged(_message.Message):
    __slots__ = ("person_id", "resource_id", "favourite")
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    FAVOURITE_FIELD_NUMBER: _ClassVar[int]
    person_id: str
    resource_id: str
    favourite: bool
    def __init__(self, person_id: _Optional[str] = ..., resource_id: _Optional[str] = ..., favourite: _Optional[bool] = ...) -> None: ...
