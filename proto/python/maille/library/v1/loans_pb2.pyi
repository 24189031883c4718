from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Loan(_message.Message):
    __slots__ = ("person_id", "uai", "record_id", "title", "barcode", "due")
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    UAI_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BARCODE_FIELD_NUMBER: _ClassVar[int]
    DUE_FIELD_NUMBER: _ClassVar[int]
    person_id: str
    uai: str
    record_id: int
    title: str
    barcode: str
    due: str
    def __init__(self, person_id: _Optional[str] = ..., uai: _Optional[str] = ..., record_id: _Optional[int] = ..., title: _Optional[str] = ..., barcode: _Optional[str] = ..., due: _Optional[str] = ...) -> None: ...

class LoanDue(_message.Message):
    __slots__ = ("loan",)
    LOAN_FIELD_NUMBER: _ClassVar[int]
    loan: Loan
    def __init__(self, loan: _Optional[_Union[Loan, _Mapping]] = ...) -> None: ...

class LoanLate(_message.Message):
    __slots__ = ("loan",)
    LOAN_FIELD_NUMBER: _ClassVar[int]
    loan: Loan
    def __init__(self, loan: _Optional[_Union[Loan, _Mapping]] = ...) -> None: ...

class ReservationReady(_message.Message):
    __slots__ = ("person_id", "uai", "record_id", "until", "reservation_id")
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    UAI_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    person_id: str
    uai: str
    record_id: int
    until: str
    reservation_id: int
    def __init__(self, person_id: _Optional[str] = ..., uai: _Optional[str] = ..., record_id: _Optional[int] = ..., until: _Optional[str] = ..., reservation_id: _Optional[int] = ...) -> None: ...
