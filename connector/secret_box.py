"""Encryption of provider secrets stored in Dataverse (Fernet, rotatable with MultiFernet).

The keys come from ``CONNECTOR_SECRET_KEYS`` (first key encrypts, every key decrypts), so a
key is rotated by putting the new one first and keeping the old one until every row was
re-encrypted. An admin may type a plain token into the configuration row: :meth:`SecretBox.open`
recognises a value that is not a Fernet token, returns it, and hands back the ciphertext to
write in its place, as it does for a token made with an older key. Secret values never appear
in messages, logs or ``repr``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from connector.errors import ConfigurationError

_VERSION = 0x80
_OVERHEAD = 1 + 8 + 16 + 32  # version, timestamp, IV, HMAC


def looks_encrypted(value: str) -> bool:
    """Whether ``value`` has the shape of a Fernet token (not whether it decrypts)."""
    try:
        raw = base64.urlsafe_b64decode(value.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return False
    body = len(raw) - _OVERHEAD
    return len(raw) > _OVERHEAD and raw[0] == _VERSION and body % 16 == 0


@dataclass(frozen=True, slots=True)
class Opened:
    """A stored secret read back: the plain value, and what to store instead (if anything)."""

    plain: str = field(repr=False)
    rewrite: str | None = field(default=None, repr=False)


class SecretBox:
    """Encrypts and decrypts secrets with the connector's Fernet keys."""

    def __init__(self, keys: Sequence[str | SecretStr]) -> None:
        try:
            fernets = [Fernet(_reveal(key).encode()) for key in keys]
        except (ValueError, TypeError):
            raise ConfigurationError(
                "CONNECTOR_SECRET_KEYS holds a value that is not a Fernet key"
            ) from None
        self._fernets = fernets

    def _keys(self) -> tuple[Fernet, MultiFernet]:
        if not self._fernets:
            raise ConfigurationError(
                "no secret keys: set CONNECTOR_SECRET_KEYS (make one with `connector config "
                "new-key`) before storing or reading provider secrets"
            )
        return self._fernets[0], MultiFernet(self._fernets)

    def __repr__(self) -> str:
        return "SecretBox(keys=**********)"

    def encrypt(self, plain: str) -> str:
        """The Fernet token of ``plain`` under the current (first) key."""
        primary, _ = self._keys()
        return primary.encrypt(plain.encode("utf-8")).decode("ascii")

    def decrypt(self, stored: str) -> str:
        """The plain value of a token; a plain value is returned as it is."""
        return self.open(stored).plain

    def reveal(self, stored: str) -> tuple[str, str | None]:
        """``(plain, rewrite)`` as :meth:`open` gives them (the ``SecretCipher`` port form)."""
        opened = self.open(stored)
        return opened.plain, opened.rewrite

    def open(self, stored: str) -> Opened:
        """Read a stored secret; ``rewrite`` is set when the row should be updated.

        A plain value (typed by an admin) is returned with its encryption as ``rewrite``; a
        token made with an older key is returned with its re-encryption under the current key.
        A token no configured key opens is a :class:`ConfigurationError` (a key was dropped).
        """
        if not looks_encrypted(stored):
            return Opened(stored, self.encrypt(stored))
        primary, every = self._keys()
        token = stored.encode("ascii")
        try:
            return Opened(primary.decrypt(token).decode("utf-8"))
        except InvalidToken:
            pass
        try:
            plain = every.decrypt(token).decode("utf-8")
        except InvalidToken:
            raise ConfigurationError(
                "a stored secret was encrypted with a key that is not in CONNECTOR_SECRET_KEYS"
            ) from None
        return Opened(plain, every.rotate(token).decode("ascii"))


def _reveal(key: str | SecretStr) -> str:
    return key.get_secret_value() if isinstance(key, SecretStr) else key
