from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class OpacChanged(_message.Message):
    __slots__ = ("uai", "opac_url")
    UAI_FIELD_NUMBER: _ClassVar[int]
    OPAC_URL_FIELD_NUMBER: _ClassVar[int]
    uai: str
    opac_url: str
    def __init__(self, uai: _Optional[str] = ..., opac_url: _Optional[str] = ...) -> None: ...
