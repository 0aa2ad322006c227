"""Connected accounts (one linked Salesforce user in one org) and pending OAuth states."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, utcnow

if TYPE_CHECKING:
    from .services import Service

ACTIVE = "active"
NEEDS_REAUTH = "needs_reauth"


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("service_id", "organization_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(20), default=ACTIVE)
    status_reason: Mapped[str | None] = mapped_column(Text)

    instance_url: Mapped[str | None] = mapped_column(String(255))
    identity_url: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(18))
    username: Mapped[str | None] = mapped_column(String(255))
    organization_id: Mapped[str | None] = mapped_column(String(18))

    access_token_enc: Mapped[str | None] = mapped_column(Text)
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    # Fencing token: every token write is a compare-and-swap on this counter, so a refresher
    # whose lock expired mid-refresh can never overwrite a newer token.
    token_version: Mapped[int] = mapped_column(default=0)
    token_issued_at: Mapped[datetime | None]
    token_expires_at: Mapped[datetime | None]
    last_refresh_at: Mapped[datetime | None]
    refresh_count: Mapped[int] = mapped_column(default=0)
    last_refresh_error: Mapped[str | None] = mapped_column(Text)
    consecutive_refresh_failures: Mapped[int] = mapped_column(default=0)

    api_usage_used: Mapped[int | None]
    api_usage_max: Mapped[int | None]
    api_usage_at: Mapped[datetime | None]
    # Set when Salesforce reported the daily allocation spent; work on the account waits.
    quota_exhausted_until: Mapped[datetime | None]

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    service: Mapped[Service] = relationship(back_populates="accounts")


class OAuthState(Base):
    """A pending authorization: random state (stored hashed), PKCE verifier (encrypted)."""

    __tablename__ = "oauth_states"

    id: Mapped[int] = mapped_column(primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    account_name: Mapped[str] = mapped_column(String(100))
    code_verifier_enc: Mapped[str] = mapped_column(Text)
    # Hash of a value kept in the browser session when the link started from a page.
    session_binding: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
