"""Admins and API tokens: creation, password checks with throttling, token lookup.

Passwords are hashed with Werkzeug's scrypt; API tokens are random and stored as SHA-256.
After `MAX_FAILURES` wrong passwords an admin is locked out for a time that doubles with each
further failure (capped), so a guessing attack gets a handful of tries an hour.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from .models import Admin, ApiToken, hash_token, new_token, utcnow

MAX_FAILURES = 5
BASE_LOCKOUT = timedelta(minutes=1)
MAX_LOCKOUT = timedelta(hours=1)
# Checked against when the email is unknown, so timing does not reveal which emails exist.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class AdminError(ValueError):
    pass


class LoginThrottled(Exception):
    def __init__(self, until: datetime) -> None:
        self.until = until
        super().__init__(f"too many failed logins; try again after {until:%H:%M:%S} UTC")


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def create_admin(session: Session, email: str, password: str) -> Admin:
    email = email.strip().lower()
    problems = []
    if "@" not in email or len(email) > 254:
        problems.append("email: expected an email address")
    if len(password) < 8:
        problems.append("password: expected at least 8 characters")
    if problems:
        raise AdminError("; ".join(problems))
    if session.scalar(select(Admin).where(Admin.email == email)) is not None:
        raise AdminError(f"email: an admin {email} already exists")
    admin = Admin(email=email, password_hash=generate_password_hash(password))
    session.add(admin)
    session.flush()
    return admin


def authenticate(session: Session, email: str, password: str) -> Admin | None:
    """Return the admin if the password is right; raise LoginThrottled while locked out."""
    now = utcnow()
    admin = session.scalar(select(Admin).where(Admin.email == email.strip().lower()))
    if admin is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if admin.locked_until is not None and admin.locked_until > now:
        raise LoginThrottled(admin.locked_until)
    if check_password_hash(admin.password_hash, password):
        admin.failed_logins = 0
        admin.locked_until = None
        admin.last_login_at = now
        return admin
    admin.failed_logins += 1
    if admin.failed_logins >= MAX_FAILURES:
        extra = admin.failed_logins - MAX_FAILURES
        admin.locked_until = now + min(BASE_LOCKOUT * (2**extra), MAX_LOCKOUT)
    return None


def create_api_token(session: Session, name: str) -> tuple[ApiToken, str]:
    """Create a token; the plaintext is returned once and never stored."""
    name = name.strip()
    if not name or len(name) > 100:
        raise AdminError("name: expected 1 to 100 characters")
    plaintext = new_token()
    token = ApiToken(name=name, token_hash=hash_token(plaintext), hint=plaintext[:8])
    session.add(token)
    session.flush()
    return token, plaintext


def verify_api_token(session: Session, plaintext: str) -> ApiToken | None:
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(plaintext)))
    if token is None or token.revoked_at is not None:
        return None
    now = utcnow()
    # Written at most once a minute: a busy client must not turn every read into a write.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now
    return token


def revoke_api_token(session: Session, token_id: int) -> ApiToken | None:
    """Revoke a token (kept, with its revocation time, so the list shows what happened)."""
    token = session.get(ApiToken, token_id)
    if token is not None and token.revoked_at is None:
        token.revoked_at = utcnow()
    return token


def change_password(session: Session, admin_id: int, current: str, new: str) -> None:
    """Set a new password after checking the current one; raise AdminError listing problems."""
    admin = session.get(Admin, admin_id)
    problems = []
    if admin is None or not check_password_hash(admin.password_hash, current):
        problems.append("current_password: wrong password")
    if len(new) < 8:
        problems.append("new_password: expected at least 8 characters")
    if problems:
        raise AdminError("; ".join(problems))
    assert admin is not None
    admin.password_hash = generate_password_hash(new)
