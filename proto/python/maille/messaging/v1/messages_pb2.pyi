from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class MessageDelivered(_message.Message):
    __slots__ = ("message_id", "thread_id", "sender_id", "sender_name", "subject", "recipient_ids", "has_attachments")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_NAME_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_IDS_FIELD_NUMBER: _ClassVar[int]
    HAS_ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    thread_id: str
    sender_id: str
    sender_name: str
    subject: str
    recipient_ids: _containers.RepeatedScalarFieldContainer[str]
    has_attachments: bool
    def __init__(self, message_id: _Optional[str] = ..., thread_id: _Optional[str] = ..., sender_id: _Optional[str] = ..., sender_name: _Optional[str] = ..., subject: _Optional[str] = ..., recipient_ids: _Optional[_Iterable[str]] = ..., has_attachments: _Optional[bool] = ...) -> None: ...

class MessageRecalled(_message.Message):
    __slots__ = ("message_id", "sender_id", "recipient_ids")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_IDS_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    sender_id: str
    recipient_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, message_id: _Optional[str] = ..., sender_id: _Optional[str] = ..., recipient_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class MailboxPurged(_message.Message):
    __slots__ = ("person_id", "messages")
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    person_id: str
    messages: int
    def __init__(self, person_id: _Optional[str] = ..., messages: _Optional[int] = ...) -> None: ...
