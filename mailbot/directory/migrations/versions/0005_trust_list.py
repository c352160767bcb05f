"""trust list: the Ministry's list of accredited CAs, and the CA directory's link to it

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "trust_list_editions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("etag", sa.String(length=500), nullable=True),
        sa.Column("last_modified", sa.String(length=100), nullable=True),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trust_list_editions")),
        sa.UniqueConstraint("version", name=op.f("uq_trust_list_editions_version")),
    )
    op.create_table(
        "accredited_cas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identity", sa.String(length=600), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("short_name", sa.Text(), nullable=True),
        sa.Column("inn", sa.String(length=20), nullable=True),
        sa.Column("ogrn", sa.String(length=20), nullable=True),
        sa.Column("registry_number", sa.String(length=50), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("info_url", sa.Text(), nullable=True),
        sa.Column("status_text", sa.String(length=100), nullable=False),
        sa.Column("status_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("last_version", sa.BigInteger(), nullable=False),
        sa.Column("first_version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accredited_cas")),
        sa.UniqueConstraint("identity", name=op.f("uq_accredited_cas_identity")),
    )
    op.create_index(
        op.f("ix_accredited_cas_registry_number"), "accredited_cas", ["registry_number"]
    )
    op.create_table(
        "accredited_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ca_id", sa.Integer(), nullable=False),
        sa.Column("ski", sa.String(length=128), nullable=False),
        sa.Column("crl_urls", sa.JSON(), nullable=False),
        sa.Column("last_version", sa.BigInteger(), nullable=False),
        sa.Column("first_version", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ca_id"], ["accredited_cas.id"], name=op.f("fk_accredited_keys_ca_id_accredited_cas")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accredited_keys")),
        sa.UniqueConstraint("ca_id", "ski", name=op.f("uq_accredited_keys_ca_id_ski")),
    )
    op.create_index(op.f("ix_accredited_keys_ca_id"), "accredited_keys", ["ca_id"])
    op.create_index(op.f("ix_accredited_keys_ski"), "accredited_keys", ["ski"])
    op.create_table(
        "accredited_certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("thumbprint_sha1", sa.String(length=40), nullable=False),
        sa.Column("certificate_der", sa.LargeBinary(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subject_text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["accredited_keys.id"],
            name=op.f("fk_accredited_certificates_key_id_accredited_keys"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accredited_certificates")),
        sa.UniqueConstraint(
            "key_id",
            "thumbprint_sha1",
            name=op.f("uq_accredited_certificates_key_id_thumbprint_sha1"),
        ),
    )
    op.create_index(
        op.f("ix_accredited_certificates_key_id"), "accredited_certificates", ["key_id"]
    )
    op.create_index(
        op.f("ix_accredited_certificates_thumbprint_sha1"),
        "accredited_certificates",
        ["thumbprint_sha1"],
    )
    # Plain ALTER TABLE on both databases: a batch (copy-and-move) of this table on
    # SQLite would drop a table that ``certificates`` and ``quarantine`` refer to.
    op.add_column("certification_authorities", sa.Column("list_version", sa.Integer()))
    op.add_column("certification_authorities", sa.Column("list_flag", sa.String(length=30)))
    op.add_column(
        "certification_authorities", sa.Column("list_flagged_at", sa.DateTime(timezone=True))
    )


def downgrade() -> None:

    # SQLite 3.35+ drops a column in place (no copy of a table others refer to).
    for column in ("list_flagged_at", "list_flag", "list_version"):
        op.drop_column("certification_authorities", column)
    op.drop_table("accredited_certificates")
    op.drop_table("accredited_keys")
    op.drop_table("accredited_cas")
    op.drop_table("trust_list_editions")
