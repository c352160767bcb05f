"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "certification_authorities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("subject_dn", sa.Text(), nullable=False),
        sa.Column("subject_der_hex", sa.Text(), nullable=False),
        sa.Column("ski", sa.String(length=128), nullable=True),
        sa.Column("certificate_der", sa.LargeBinary(), nullable=False),
        sa.Column("thumbprint_sha1", sa.String(length=40), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("crl_urls", sa.JSON(), nullable=False),
        sa.Column("aia_urls", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certification_authorities")),
        sa.UniqueConstraint(
            "thumbprint_sha1", name=op.f("uq_certification_authorities_thumbprint_sha1")
        ),
    )
    with op.batch_alter_table("certification_authorities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_certification_authorities_ski"), ["ski"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_certification_authorities_subject_der_hex"),
            ["subject_der_hex"],
            unique=False,
        )

    op.create_table(
        "organisations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("inn", sa.String(length=12), nullable=True),
        sa.Column("ogrn", sa.String(length=15), nullable=True),
        sa.Column("registry_code", sa.String(length=50), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("registry_code", name=op.f("uq_organisations_registry_code")),
    )
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_organisations_inn"), ["inn"], unique=False)

    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("surname", sa.String(length=200), nullable=True),
        sa.Column("given_names", sa.String(length=200), nullable=True),
        sa.Column("title", sa.String(length=500), nullable=True),
        sa.Column("snils", sa.String(length=11), nullable=True),
        sa.Column("inn", sa.String(length=12), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("certificate_fields", sa.JSON(), nullable=False),
        sa.Column("certificate_fields_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_subscribers_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscribers")),
    )
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subscribers_organisation_id"), ["organisation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_subscribers_snils"), ["snils"], unique=False)

    op.create_table(
        "letters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox", sa.String(length=200), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("uid", sa.BigInteger(), nullable=True),
        sa.Column("message_id", sa.String(length=998), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("route", sa.String(length=100), nullable=True),
        sa.Column("outcome", sa.String(length=50), nullable=True),
        sa.Column("template_key", sa.String(length=50), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("rule_hits", sa.JSON(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("certificate_id", sa.Integer(), nullable=True),
        sa.Column("archive_path", sa.Text(), nullable=True),
        sa.Column("filed_to", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscriber_id"], ["subscribers.id"], name=op.f("fk_letters_subscriber_id_subscribers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_letters")),
        sa.UniqueConstraint(
            "mailbox", "uidvalidity", "uid", name=op.f("uq_letters_mailbox_uidvalidity_uid")
        ),
    )
    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.create_index(
            "ix_letters_message_id_sha256", ["message_id", "sha256"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_letters_outcome"), ["outcome"], unique=False)
        batch_op.create_index(batch_op.f("ix_letters_received_at"), ["received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_letters_sender"), ["sender"], unique=False)
        batch_op.create_index(batch_op.f("ix_letters_sha256"), ["sha256"], unique=False)
        batch_op.create_index(batch_op.f("ix_letters_state"), ["state"], unique=False)

    op.create_table(
        "trusted_addresses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_trusted_addresses_subscriber_id_subscribers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trusted_addresses")),
        sa.UniqueConstraint(
            "subscriber_id", "address", name=op.f("uq_trusted_addresses_subscriber_id_address")
        ),
    )
    with op.batch_alter_table("trusted_addresses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trusted_addresses_address"), ["address"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_trusted_addresses_subscriber_id"), ["subscriber_id"], unique=False
        )

    op.create_table(
        "certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("ca_id", sa.Integer(), nullable=True),
        sa.Column("serial", sa.String(length=128), nullable=False),
        sa.Column("issuer_dn", sa.Text(), nullable=False),
        sa.Column("subject_dn", sa.Text(), nullable=False),
        sa.Column("subject_cn", sa.String(length=500), nullable=True),
        sa.Column("snils", sa.String(length=11), nullable=True),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("thumbprint_sha1", sa.String(length=40), nullable=False),
        sa.Column("thumbprint_sha256", sa.String(length=64), nullable=False),
        sa.Column("store_path", sa.Text(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("letter_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revocation_reason", sa.String(length=50), nullable=True),
        sa.ForeignKeyConstraint(
            ["ca_id"],
            ["certification_authorities.id"],
            name=op.f("fk_certificates_ca_id_certification_authorities"),
        ),
        sa.ForeignKeyConstraint(
            ["letter_id"], ["letters.id"], name=op.f("fk_certificates_letter_id_letters")
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_certificates_subscriber_id_subscribers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificates")),
        sa.UniqueConstraint("thumbprint_sha1", name=op.f("uq_certificates_thumbprint_sha1")),
    )
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_certificates_not_after"), ["not_after"], unique=False)
        batch_op.create_index(batch_op.f("ix_certificates_serial"), ["serial"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_certificates_subscriber_id"), ["subscriber_id"], unique=False
        )

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("letter_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("template_key", sa.String(length=50), nullable=True),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["letter_id"], ["letters.id"], name=op.f("fk_outbox_letter_id_letters")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("message_id", name=op.f("uq_outbox_message_id")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_letter_id"), ["letter_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_status"), ["status"], unique=False)

    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("letter_id", sa.Integer(), nullable=True),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("thumbprint_sha1", sa.String(length=40), nullable=False),
        sa.Column("serial", sa.String(length=128), nullable=False),
        sa.Column("issuer_dn", sa.Text(), nullable=False),
        sa.Column("authority_key_id", sa.String(length=128), nullable=True),
        sa.Column("aia_urls", sa.JSON(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["letter_id"], ["letters.id"], name=op.f("fk_quarantine_letter_id_letters")
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_quarantine_subscriber_id_subscribers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine")),
    )
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_quarantine_authority_key_id"), ["authority_key_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_quarantine_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_quarantine_thumbprint_sha1"), ["thumbprint_sha1"], unique=False
        )

    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("dedup_key", sa.String(length=300), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name=op.f("fk_alerts_outbox_id_outbox")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_alerts_dedup_key")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_kind"), ["kind"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_kind"))

    op.drop_table("alerts")
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quarantine_thumbprint_sha1"))
        batch_op.drop_index(batch_op.f("ix_quarantine_status"))
        batch_op.drop_index(batch_op.f("ix_quarantine_authority_key_id"))

    op.drop_table("quarantine")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_status"))
        batch_op.drop_index(batch_op.f("ix_outbox_letter_id"))

    op.drop_table("outbox")
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificates_subscriber_id"))
        batch_op.drop_index(batch_op.f("ix_certificates_serial"))
        batch_op.drop_index(batch_op.f("ix_certificates_not_after"))

    op.drop_table("certificates")
    with op.batch_alter_table("trusted_addresses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trusted_addresses_subscriber_id"))
        batch_op.drop_index(batch_op.f("ix_trusted_addresses_address"))

    op.drop_table("trusted_addresses")
    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_letters_state"))
        batch_op.drop_index(batch_op.f("ix_letters_sha256"))
        batch_op.drop_index(batch_op.f("ix_letters_sender"))
        batch_op.drop_index(batch_op.f("ix_letters_received_at"))
        batch_op.drop_index(batch_op.f("ix_letters_outcome"))
        batch_op.drop_index("ix_letters_message_id_sha256")

    op.drop_table("letters")
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscribers_snils"))
        batch_op.drop_index(batch_op.f("ix_subscribers_organisation_id"))

    op.drop_table("subscribers")
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_organisations_inn"))

    op.drop_table("organisations")
    with op.batch_alter_table("certification_authorities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certification_authorities_subject_der_hex"))
        batch_op.drop_index(batch_op.f("ix_certification_authorities_ski"))

    op.drop_table("certification_authorities")
