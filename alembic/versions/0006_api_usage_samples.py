"""api usage samples: each account's usage per 5-minute slot, for the 24-hour chart

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 14:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_usage_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("max", sa.Integer(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_api_usage_samples_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_usage_samples")),
        sa.UniqueConstraint("account_id", "slot", name=op.f("uq_api_usage_samples_account_id_slot")),
    )
    with op.batch_alter_table("api_usage_samples", schema=None) as batch_op:
        batch_op.create_index("ix_api_usage_samples_slot", ["slot"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("api_usage_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_api_usage_samples_slot")
    op.drop_table("api_usage_samples")
