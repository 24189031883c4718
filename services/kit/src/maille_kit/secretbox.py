"""Secrets kept in the docstore (a PMB's password, an IdP's client secret), encrypted at rest.

AES-256-GCM under a key from a Secret (`…_SECRETS_KEY`); each value names the key that sealed it, and is bound to
where it is kept (`context`: its collection, document and field), so that a sealed value copied elsewhere does not
open. Rotation: the new key becomes the current one and the old one is listed in `…_SECRETS_OLD_KEYS`; at start the
service seals again, under the current key, every value sealed under an old one (or kept in clear before
encryption existed); once that is done the old key can go.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "enc1:"


class UnreadableSecret(ValueError):
    """A sealed value no known key opens (its key was dropped too early, or the value was tampered with)."""


def _key(secret: str) -> tuple[str, AESGCM]:
    raw = hashlib.sha256(secret.encode()).digest()
    return hashlib.sha256(b"maille-secretbox-kid" + raw).hexdigest()[:8], AESGCM(raw)


class SecretBox:
    """Seals and opens the secrets a service keeps."""

    def __init__(self, current: str, older: Iterable[str] = ()) -> None:
        if len(current) < 16:
            raise ValueError("the secrets key must be at least 16 characters")
        self.kid, self._current = _key(current)
        self._keys = dict(_key(old) for old in older if old)
        self._keys[self.kid] = self._current

    @classmethod
    def of(cls, current: str, older: str = "") -> SecretBox:
        """From the settings: the current key, and the old ones comma-separated."""
        return cls(current, [k.strip() for k in older.split(",") if k.strip()])

    def seal(self, plain: str, *, context: str) -> str:
        if not plain:
            return ""
        nonce = os.urandom(12)
        sealed = self._current.encrypt(nonce, plain.encode(), context.encode())
        return f"{PREFIX}{self.kid}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, value: str, *, context: str) -> str:
        """The secret; a value kept in clear (before encryption) as it is."""
        if not value or not value.startswith(PREFIX):
            return value
        kid, _, body = value[len(PREFIX) :].partition(":")
        key = self._keys.get(kid)
        if key is None:
            raise UnreadableSecret(
                f"a secret was sealed under key {kid}, which is neither the current key nor an old one"
            )
        try:
            data = base64.urlsafe_b64decode(body)
            return key.decrypt(data[:12], data[12:], context.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise UnreadableSecret(f"a secret sealed under key {kid} does not open here (tampered, or moved)") from exc

    def is_current(self, value: str) -> bool:
        """Whether the value is sealed under the current key (an empty one needs nothing)."""
        return not value or value.startswith(f"{PREFIX}{self.kid}:")
