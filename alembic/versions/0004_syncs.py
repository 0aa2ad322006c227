"""syncs: definitions, change-numbered synced records, record sequences

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 11:25:00

`synced_records` is dropped and created again: no release ever wrote a row into it (the sync
engine arrives with this revision), and the new NOT NULL change number has no value to give
old rows. `syncs` is altered in place because `runs.sync_id` refers to it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _old_synced_records() -> None:
    op.create_table(
        "synced_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("object", sa.String(length=80), nullable=False),
        sa.Column("record_id", sa.String(length=18), nullable=False),
        sa.Column("system_modstamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("is_deleted", sa.Boolean(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_synced_records_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_synced_records")),
        sa.UniqueConstraint(
            "account_id",
            "object",
            "record_id",
            name=op.f("uq_synced_records_account_id_object_record_id"),
        ),
    )
    with op.batch_alter_table("synced_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_synced_records_cursor",
            ["account_id", "object", "system_modstamp", "record_id"],
            unique=False,
        )


def upgrade() -> None:
    with op.batch_alter_table("synced_records", schema=None) as batch_op:
        batch_op.drop_index("ix_synced_records_cursor")
    op.drop_table("synced_records")
    op.create_table(
        "synced_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("sync_id", sa.Integer(), nullable=True),
        sa.Column("object", sa.String(length=80), nullable=False),
        sa.Column("record_id", sa.String(length=18), nullable=False),
        sa.Column("system_modstamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("is_deleted", sa.Boolean(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_change", sa.String(length=8), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_synced_records_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sync_id"],
            ["syncs.id"],
            name=op.f("fk_synced_records_sync_id_syncs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_synced_records")),
        sa.UniqueConstraint(
            "account_id",
            "object",
            "record_id",
            name=op.f("uq_synced_records_account_id_object_record_id"),
        ),
    )
    # No (SystemModstamp, Id) index: the cursor lives on the sync, and every extra index
    # costs each upserted row; the records API reads by change number.
    with op.batch_alter_table("synced_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_synced_records_object_change_seq", ["object", "change_seq"], unique=False
        )
    op.create_table(
        "record_sequences",
        sa.Column("object", sa.String(length=80), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("object", name=op.f("pk_record_sequences")),
    )
    with op.batch_alter_table("syncs", schema=None) as batch_op:
        # Server defaults only so that the ALTER works on a table with rows in it.
        batch_op.add_column(
            sa.Column("name", sa.String(length=100), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("api", sa.String(length=8), nullable=False, server_default="auto")
        )
        batch_op.add_column(
            sa.Column("bulk_threshold", sa.Integer(), nullable=False, server_default="50000")
        )
        batch_op.add_column(
            sa.Column("lookback_seconds", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("on_change", sa.String(length=100), nullable=True))
        batch_op.add_column(
            sa.Column("records_deleted", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.create_unique_constraint(batch_op.f("uq_syncs_name"), ["name"])
        batch_op.create_unique_constraint(
            batch_op.f("uq_syncs_account_id_object"), ["account_id", "object"]
        )


def downgrade() -> None:
    with op.batch_alter_table("syncs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_syncs_account_id_object"), type_="unique")
        batch_op.drop_constraint(batch_op.f("uq_syncs_name"), type_="unique")
        for column in ("records_deleted", "on_change", "lookback_seconds", "bulk_threshold"):
            batch_op.drop_column(column)
        batch_op.drop_column("api")
        batch_op.drop_column("name")
    op.drop_table("record_sequences")
    with op.batch_alter_table("synced_records", schema=None) as batch_op:
        batch_op.drop_index("ix_synced_records_object_change_seq")
    op.drop_table("synced_records")
    _old_synced_records()
