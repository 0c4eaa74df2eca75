"""The service's own keys: where they come from, and the refusal to run on none in production.

`LANTIAN_SECRET_KEY` signs tokens, cookies and audit checkpoints;
`LANTIAN_STATION_KEY_ENCRYPTION_KEY` encrypts the station secrets at rest. Outside production
a missing key is generated once, at random, and kept in the instance folder (mode 0600), so
every process of one installation shares it and none falls back to a key anyone can read in
the source. In production a missing key refuses to start: a generated one would silently
differ between hosts.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from core.settings import Settings

PRODUCTION = "production"
SECRET_KEY_FILE = "secret_key"
STATION_KEY_FILE = "station_key_encryption_key"


class MissingKey(RuntimeError):
    """A key production must be given."""


def instance_key(instance_dir: str, name: str, make: str) -> str:
    """The key kept in `instance_dir/name`, written there first (0600, never overwritten) from `make`.

    Written whole to a temporary file and then linked into place, so processes starting side
    by side agree on one key and none reads a file another is still writing."""
    path = Path(instance_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return path.read_text().strip()
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as out:
            out.write(make + "\n")
        os.link(temporary, path)
    except FileExistsError:  # another process linked its key first: that one holds
        return path.read_text().strip()
    finally:
        os.unlink(temporary)
    return make


def _require(settings: Settings, variable: str) -> None:
    if settings.env == PRODUCTION:
        raise MissingKey(
            f"{variable} is not set and LANTIAN_ENV=production: refusing to start. "
            f"Set it to a long random value (e.g. `python -c \"import secrets; print(secrets.token_urlsafe(48))\"`)"
        )


def resolved(settings: Settings) -> Settings:
    """`settings` with both keys present: given, or (outside production) kept in the instance folder."""
    update: dict[str, str] = {}
    if not settings.secret_key:
        _require(settings, "LANTIAN_SECRET_KEY")
        update["secret_key"] = instance_key(settings.instance_dir, SECRET_KEY_FILE, secrets.token_urlsafe(48))
    if not settings.station_key_encryption_key:
        _require(settings, "LANTIAN_STATION_KEY_ENCRYPTION_KEY")
        update["station_key_encryption_key"] = instance_key(
            settings.instance_dir, STATION_KEY_FILE, Fernet.generate_key().decode())
    return settings.model_copy(update=update) if update else settings


def _fernet(key: str) -> Fernet:
    """A Fernet key as `Fernet.generate_key()` prints it, or any other string (stretched to 32 bytes)."""
    try:
        return Fernet(key.encode())
    except ValueError:
        return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))


class SecretBox:
    """Encrypts station secrets at rest. `keys` is comma-separated, newest first: the first
    encrypts, every one decrypts, so a new key is introduced before the old one is retired."""

    def __init__(self, keys: str) -> None:
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise MissingKey("no station key encryption key")
        self._box = MultiFernet([_fernet(k) for k in parts])

    def seal(self, secret: str) -> str:
        return self._box.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        """The secret, or "" for a value no key here opens (it then matches no signature)."""
        try:
            return self._box.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return ""

    def reseal(self, sealed: str) -> str:
        """`sealed` encrypted again under the newest key."""
        return self._box.rotate(sealed.encode()).decode()
