"""Create team settings, their change history, and legal holds on calls.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# SQLite only autoincrements an INTEGER PRIMARY KEY.
BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "team_settings",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("recording_retention_days", sa.Integer(), nullable=True),
        sa.Column("fallback_number", sa.String(length=32), nullable=True),
        sa.Column("summary_recipients", JSON, nullable=True),
        sa.Column("daily_summary_enabled", sa.Boolean(), nullable=False),
        sa.Column("weekly_report_enabled", sa.Boolean(), nullable=False),
        sa.Column("send_empty_summaries", sa.Boolean(), nullable=False),
        sa.Column("teams_channel", JSON, nullable=True),
        sa.Column("calendar_id", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_team_settings_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_team_settings")),
    )
    op.create_table(
        "team_settings_changes",
        sa.Column("id", BIGINT_ID, autoincrement=True, nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("old_value", JSON, nullable=True),
        sa.Column("new_value", JSON, nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_team_settings_changes_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_team_settings_changes_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_settings_changes")),
    )
    op.create_index(
        "ix_team_settings_changes_team_changed",
        "team_settings_changes",
        ["team_id", "changed_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_team_settings_changes_user_id"),
        "team_settings_changes",
        ["user_id"],
        unique=False,
    )
    op.create_table(
        "legal_holds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("call_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("set_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
            name=op.f("fk_legal_holds_call_id_calls"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["set_by_user_id"],
            ["users.id"],
            name=op.f("fk_legal_holds_set_by_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["released_by_user_id"],
            ["users.id"],
            name=op.f("fk_legal_holds_released_by_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_holds")),
    )
    op.create_index(
        "ix_legal_holds_call_set", "legal_holds", ["call_id", "set_at"], unique=False
    )
    op.create_index(
        "uq_legal_holds_active_call",
        "legal_holds",
        ["call_id"],
        unique=True,
        postgresql_where=sa.text("released_at IS NULL"),
        sqlite_where=sa.text("released_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_legal_holds_active_call", table_name="legal_holds")
    op.drop_index("ix_legal_holds_call_set", table_name="legal_holds")
    op.drop_table("legal_holds")
    op.drop_index(
        op.f("ix_team_settings_changes_user_id"), table_name="team_settings_changes"
    )
    op.drop_index(
        "ix_team_settings_changes_team_changed", table_name="team_settings_changes"
    )
    op.drop_table("team_settings_changes")
    op.drop_table("team_settings")
