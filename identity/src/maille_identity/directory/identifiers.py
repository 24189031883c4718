"""National identifiers: UAI (school code) and profile codes, in the one canonical form used inside."""

from __future__ import annotations

UAI_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"

PUPIL, PARENT, TEACHER, DOCUMENTALIST, DIRECTION, SCHOOL_LIFE, OTHER_STAFF = (
    "National_ELV",
    "National_TUT",
    "National_ENS",
    "National_DOC",
    "National_DIR",
    "National_EVS",
    "National_ETA",
)
PROFILES = (PUPIL, PARENT, TEACHER, DOCUMENTALIST, DIRECTION, SCHOOL_LIFE, OTHER_STAFF, "National_ACA", "National_COL")


class InvalidUAI(ValueError):
    """Not a UAI: says why."""


def normalise_uai(raw: str, *, check_letter: bool) -> tuple[str, str | None]:
    """The UAI trimmed and upper-cased, and a warning when its check letter is wrong but tolerated.

    A UAI is seven digits and a check letter, `UAI_LETTERS[int(digits) % 23]`. National test
    environments use codes whose letter does not match: refused when `check_letter`, else a warning.
    """
    uai = raw.strip().upper()
    if len(uai) != 8 or not uai[:7].isdigit() or not uai[7].isalpha():
        raise InvalidUAI(f"UAI {raw!r} is not seven digits and a letter")
    expected = UAI_LETTERS[int(uai[:7]) % 23]
    if uai[7] != expected:
        message = f"UAI {uai} has check letter {uai[7]}, expected {expected}"
        if check_letter:
            raise InvalidUAI(message)
        return uai, message
    return uai, None


def gar_profile(code: str) -> str:
    """The GAR's spelling of a profile (`National_ENS` → `National_ens`)."""
    prefix, _, suffix = code.partition("_")
    return f"{prefix}_{suffix.lower()}"
