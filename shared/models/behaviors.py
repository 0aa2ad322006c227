"""Behaviors and their versions: every save is a new immutable version."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, utcnow


class Behavior(Base):
    __tablename__ = "behaviors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    current_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    versions: Mapped[list[BehaviorVersion]] = relationship(
        back_populates="behavior",
        order_by="BehaviorVersion.version",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class BehaviorVersion(Base):
    __tablename__ = "behavior_versions"
    __table_args__ = (UniqueConstraint("behavior_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    behavior_id: Mapped[int] = mapped_column(ForeignKey("behaviors.id", ondelete="CASCADE"))
    version: Mapped[int]
    source: Mapped[str] = mapped_column(Text)
    source_format: Mapped[str] = mapped_column(String(8), default="yaml")
    definition: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    behavior: Mapped[Behavior] = relationship(back_populates="versions")
