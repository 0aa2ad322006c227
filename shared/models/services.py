"""Connected services: a Salesforce connected app (consumer key and encrypted secret)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, utcnow

if TYPE_CHECKING:
    from .accounts import Account

DEFAULT_SCOPES = "api refresh_token offline_access"
DEFAULT_API_VERSION = "62.0"
DEFAULT_LOGIN_URL = "https://login.salesforce.com"


class Service(Base):
    __tablename__ = "services"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    provider: Mapped[str] = mapped_column(String(32), default="salesforce")
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret_enc: Mapped[str] = mapped_column(Text)
    login_url: Mapped[str] = mapped_column(String(255), default=DEFAULT_LOGIN_URL)
    api_version: Mapped[str] = mapped_column(String(10), default=DEFAULT_API_VERSION)
    scopes: Mapped[str] = mapped_column(String(255), default=DEFAULT_SCOPES)
    session_timeout_minutes: Mapped[int] = mapped_column(default=120)
    use_introspection: Mapped[bool] = mapped_column(default=False)
    api_reserve_percent: Mapped[int] = mapped_column(default=10)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    accounts: Mapped[list[Account]] = relationship(back_populates="service")
