"""Tenant API keys: issued once, stored only as a hash.

A key looks like ``tg_<key id>_<secret>``. The key id (public, 10 characters) names the key in
listings and revocations; the whole key is hashed with SHA-256 for lookup. Keys carry 192 bits
of randomness, so a fast hash is the right tool here (a slow password hash protects guessable
secrets; these are not guessable, and the authorizer must stay fast).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

_KEY_ID = r"[a-z0-9]{10}"
KEY_PATTERN = re.compile(rf"^tg_({_KEY_ID})_([A-Za-z0-9_-]{{32}})$")
KEY_ID_PATTERN = re.compile(rf"^{_KEY_ID}$")
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


class KeyStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


@dataclass(frozen=True)
class TenantKey:
    """What is stored about a key: never the key itself."""

    key_hash: str
    key_id: str
    tenant_id: str
    status: KeyStatus
    created_at: datetime
    label: str = ""
    revoked_at: datetime | None = None
    #: The tenant's API Gateway API key value (its usage plan's meter), copied on the item so the
    #: authorizer returns it as usageIdentifierKey with no extra read. Never shown.
    usage_key: str = ""


class KeyAlreadyRevokedError(Exception):
    """A key revoked a second time: nothing changed; ``key`` says when it was revoked."""

    def __init__(self, key: TenantKey):
        super().__init__(f"key {key.key_id} was already revoked")
        self.key = key


@dataclass(frozen=True)
class IssuedKey:
    """A new key: ``secret`` is shown once to whoever issued it and then forgotten."""

    secret: str
    record: TenantKey


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id_of(key: str) -> str | None:
    match = KEY_PATTERN.match(key)
    return match.group(1) if match else None


def issue_key(tenant_id: str, now: datetime, label: str = "") -> IssuedKey:
    key_id = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    secret = f"tg_{key_id}_{secrets.token_urlsafe(24)}"
    record = TenantKey(
        key_hash=hash_key(secret),
        key_id=key_id,
        tenant_id=tenant_id,
        status=KeyStatus.ACTIVE,
        created_at=now,
        label=label,
    )
    return IssuedKey(secret=secret, record=record)


def bearer_token(header: str | None) -> str | None:
    """The key in an ``Authorization: Bearer <key>`` header value, or None if malformed."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token
