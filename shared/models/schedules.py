"""Schedules: run a behavior on a cron expression (in an IANA zone) or every N seconds.

The timetable lives here, not in beat: `next_run_at` (UTC) is the next slot, and firing or
skipping a slot is one compare-and-swap that moves it on (see shared.schedules.dispatch).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class Schedule(Base):
    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    behavior_name: Mapped[str] = mapped_column(String(100), index=True)
    cron: Mapped[str | None] = mapped_column(String(100))
    every_seconds: Mapped[int | None]
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(default=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Always UTC; firing a slot is a compare-and-swap on this column, so two beats never
    # fire the same slot twice.
    next_run_at: Mapped[datetime | None] = mapped_column(index=True)
    last_run_at: Mapped[datetime | None]
    last_run_id: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # Slots that came while the schedule's last run was still active (never queued behind it).
    skipped_slots: Mapped[int] = mapped_column(default=0, server_default="0")
    last_skipped_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
