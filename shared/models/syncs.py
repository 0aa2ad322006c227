"""Syncs (incremental pulls of one object) and the records they keep."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class Sync(Base):
    __tablename__ = "syncs"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    object: Mapped[str] = mapped_column(String(80))
    fields: Mapped[list[Any]] = mapped_column(default=list)
    cron: Mapped[str | None] = mapped_column(String(100))
    every_seconds: Mapped[int | None]
    enabled: Mapped[bool] = mapped_column(default=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # The (SystemModstamp, Id) cursor: the last record saved, saved after every page.
    watermark_modstamp: Mapped[datetime | None]
    watermark_id: Mapped[str | None] = mapped_column(String(18))
    records_total: Mapped[int] = mapped_column(default=0)
    next_run_at: Mapped[datetime | None] = mapped_column(index=True)
    last_run_id: Mapped[int | None]
    last_run_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SyncedRecord(Base):
    __tablename__ = "synced_records"
    __table_args__ = (
        UniqueConstraint("account_id", "object", "record_id"),
        Index("ix_synced_records_cursor", "account_id", "object", "system_modstamp", "record_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    object: Mapped[str] = mapped_column(String(80))
    record_id: Mapped[str] = mapped_column(String(18))
    system_modstamp: Mapped[datetime]
    is_deleted: Mapped[bool] = mapped_column(default=False)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)
