"""Samples of each account's API usage, taken by beat, for the 24-hour chart."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class ApiUsageSample(Base):
    """One account's usage as it stood at a sampling slot.

    `slot` is the sampling time rounded down to the sampling interval: two beats that sample
    the same slot write one row (the unique constraint). `used`/`max` are what Salesforce last
    reported (`reported_at`, the account's `api_usage_at`), not a fresh call.
    """

    __tablename__ = "api_usage_samples"
    __table_args__ = (
        UniqueConstraint("account_id", "slot"),
        Index("ix_api_usage_samples_slot", "slot"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    slot: Mapped[datetime]
    used: Mapped[int]
    max: Mapped[int]
    reported_at: Mapped[datetime | None]
