"""schedules: name, skipped slots; runs.slot

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=100), nullable=True))
        batch_op.add_column(
            sa.Column("skipped_slots", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("last_skipped_at", sa.DateTime(timezone=True), nullable=True))
    # The table was unused before this revision; name any stray row after its id.
    op.execute("UPDATE schedules SET name = 'schedule-' || CAST(id AS VARCHAR(20))")
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.alter_column("name", existing_type=sa.String(length=100), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_schedules_name"), ["name"])
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("slot", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("slot")
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_schedules_name"), type_="unique")
        batch_op.drop_column("last_skipped_at")
        batch_op.drop_column("skipped_slots")
        batch_op.drop_column("name")
