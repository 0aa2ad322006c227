"""Syncs (incremental pulls of one object of one account) and the records they keep.

`SyncedRecord.change_seq` is a local, monotonically increasing change number: every created,
updated or deleted record takes the next value of its object's `RecordSequence` row, which
the writing transaction locks until it commits, so numbers become visible in the order they
were given out (a reader paging by `change_seq` never sees 11 before 10 commits).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow

API_CHOICES = ("auto", "rest", "bulk")
CREATED = "created"
UPDATED = "updated"
DELETED = "deleted"


class Sync(Base):
    __tablename__ = "syncs"
    __table_args__ = (UniqueConstraint("name"), UniqueConstraint("account_id", "object"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    object: Mapped[str] = mapped_column(String(80))
    fields: Mapped[list[Any]] = mapped_column(default=list)
    cron: Mapped[str | None] = mapped_column(String(100))
    every_seconds: Mapped[int | None]
    enabled: Mapped[bool] = mapped_column(default=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    api: Mapped[str] = mapped_column(String(8), default="auto")
    bulk_threshold: Mapped[int] = mapped_column(default=50000)
    lookback_seconds: Mapped[int] = mapped_column(default=0)
    on_change: Mapped[str | None] = mapped_column(String(100))
    # The (SystemModstamp, Id) cursor: the furthest record saved, written with every page.
    watermark_modstamp: Mapped[datetime | None]
    watermark_id: Mapped[str | None] = mapped_column(String(18))
    records_total: Mapped[int] = mapped_column(default=0)
    records_deleted: Mapped[int] = mapped_column(default=0)
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
        Index("ix_synced_records_object_change_seq", "object", "change_seq"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    sync_id: Mapped[int | None] = mapped_column(ForeignKey("syncs.id", ondelete="SET NULL"))
    object: Mapped[str] = mapped_column(String(80))
    record_id: Mapped[str] = mapped_column(String(18))
    system_modstamp: Mapped[datetime]
    is_deleted: Mapped[bool] = mapped_column(default=False)
    deleted_at: Mapped[datetime | None]
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_change: Mapped[str] = mapped_column(String(8), default=CREATED)
    change_seq: Mapped[int] = mapped_column(BigInteger)
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)


class RecordSequence(Base):
    """The last change number given out for one object's records (see the module docstring)."""

    __tablename__ = "record_sequences"

    object: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
