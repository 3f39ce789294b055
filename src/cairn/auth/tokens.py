"""Local API tokens: issued by `cairn token create`, stored only as a SHA-256 hash.

A token is 32 random bytes, URL-safe base64 without padding (43 characters); the
database keeps `sha256(token)` so a stolen database does not hand out credentials.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cairn.auth.context import Identity
from cairn.clock import utcnow
from cairn.db.models import Token
from cairn.errors import InvalidInput, NotAuthenticated

_TTL = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_TTL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_ttl(text: str) -> timedelta:
    """`90s`, `30m`, `24h`, `7d` → a timedelta; refuses anything else."""
    match = _TTL.match(text)
    if not match or int(match.group(1)) == 0:
        raise InvalidInput(f"ttl: {text!r} is not a duration like 30m, 24h or 7d", "ttl")
    return timedelta(seconds=int(match.group(1)) * _TTL_UNITS[match.group(2)])


def issue_token(session: Session, identity: Identity, ttl: timedelta | None) -> str:
    """Store a new token for `identity` and return its secret (shown once)."""
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(Token(id=str(uuid.uuid4()), token_hash=hash_token(secret),
                      project_id=identity.project_id, user_id=identity.user_id,
                      roles=",".join(sorted(identity.roles)), created_at=now,
                      expires_at=now + ttl if ttl else None))
    return secret


def has_tokens(session: Session) -> bool:
    return session.scalar(select(Token.id).limit(1)) is not None


#: how long a validated token is trusted without asking the database again
CACHE_SECONDS = 10.0
CACHE_ENTRIES = 10_000


class LocalTokenValidator:
    """Validates tokens issued by this service against the database.

    A valid token is remembered for `CACHE_SECONDS` (never past its expiry), so a burst
    of requests costs one lookup; unknown tokens are never cached.
    """

    def __init__(self, reader: Callable[[], AbstractContextManager[Session]]) -> None:
        self._reader = reader
        self._cache: dict[str, tuple[Identity, datetime | None, float]] = {}

    def remembered(self, token: str) -> Identity | None:
        return self._remembered(hash_token(token))

    def _remembered(self, digest: str) -> Identity | None:
        cached = self._cache.get(digest)
        if cached is None or cached[2] <= time.monotonic():
            return None
        identity, expires_at, _ = cached
        if expires_at is not None and expires_at <= utcnow():
            raise NotAuthenticated("The token has expired.")
        return identity

    def validate(self, token: str) -> Identity:
        digest = hash_token(token)
        identity = self._remembered(digest)
        if identity is not None:
            return identity
        with self._reader() as session:
            row = session.execute(
                select(Token.project_id, Token.user_id, Token.roles, Token.expires_at)
                .where(Token.token_hash == digest)).first()
        if row is None:
            raise NotAuthenticated("The request you have made requires authentication.")
        roles = frozenset(r for r in row.roles.split(",") if r)
        identity = Identity(project_id=row.project_id, user_id=row.user_id, roles=roles)
        expires_at = row.expires_at
        if len(self._cache) >= CACHE_ENTRIES:
            self._cache.clear()
        self._cache[digest] = (identity, expires_at, time.monotonic() + CACHE_SECONDS)
        if expires_at is not None and expires_at <= utcnow():
            raise NotAuthenticated("The token has expired.")
        return identity

