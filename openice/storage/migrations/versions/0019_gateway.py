"""The institution gateway: deliveries of institution events with their attempts, dead letters, signing secrets,
circuit breakers and the signatures of callbacks already taken. The gateway publishes servicing's outbox from now
on: the events already in it happened before any institution subscribed, so they count as published.

Revision ID: 0019
Revises: 0017
"""
from alembic import op
import sqlalchemy as sa


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, 'sqlite')


def upgrade() -> None:
    op.create_table(
        'deliveries',
        sa.Column('id', ID, primary_key=True, autoincrement=True),
        sa.Column('institution_code', sa.Text, nullable=False),
        sa.Column('event_type', sa.String(32), nullable=False),
        sa.Column('subject', sa.String(64), nullable=False),
        sa.Column('idempotency_key', sa.String(128), nullable=False, unique=True),
        sa.Column('payload', sa.Text, nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('attempts', sa.Integer, nullable=False),
        sa.Column('next_attempt_at', sa.Float, nullable=False),
        sa.Column('lease_until', sa.Float, nullable=True),
        sa.Column('last_error', sa.Text, nullable=True),
        sa.Column('outcome', sa.Text, nullable=True),
        sa.Column('created_at', sa.String(32), nullable=False),
        sa.Column('delivered_at', sa.String(32), nullable=True),
    )
    op.create_index('ix_deliveries_due', 'deliveries', ['status', 'next_attempt_at'])
    op.create_index('ix_deliveries_subject', 'deliveries', ['subject', 'status', 'id'])
    op.create_table(
        'dead_letters',
        sa.Column('id', ID, primary_key=True, autoincrement=True),
        sa.Column('delivery_id', ID, nullable=False),
        sa.Column('institution_code', sa.Text, nullable=False),
        sa.Column('event_type', sa.String(32), nullable=False),
        sa.Column('attempts', sa.Integer, nullable=False),
        sa.Column('last_error', sa.Text, nullable=True),
        sa.Column('created_at', sa.String(32), nullable=False),
        sa.Column('replayed_at', sa.String(32), nullable=True),
    )
    op.create_index('ix_dead_letters_delivery_id', 'dead_letters', ['delivery_id'])
    op.create_table(
        'institution_secrets',
        sa.Column('institution_code', sa.Text, primary_key=True),
        sa.Column('current', sa.String(128), nullable=False),
        sa.Column('previous', sa.String(128), nullable=True),
        sa.Column('previous_until', sa.Float, nullable=True),
        sa.Column('rotated_at', sa.String(32), nullable=False),
    )
    op.create_table(
        'institution_circuits',
        sa.Column('institution_code', sa.Text, primary_key=True),
        sa.Column('state', sa.String(16), nullable=False),
        sa.Column('failures', sa.Integer, nullable=False),
        sa.Column('since', sa.Float, nullable=True),
    )
    op.create_table(
        'callback_signatures',
        sa.Column('signature', sa.String(64), primary_key=True),
        sa.Column('institution_code', sa.Text, nullable=False),
        sa.Column('signed_at', sa.Float, nullable=False),
    )
    op.create_index('ix_callback_signatures_signed_at', 'callback_signatures', ['signed_at'])
    outbox = sa.table('outbox', sa.column('published', sa.Boolean))
    op.execute(outbox.update().where(outbox.c.published.is_(False)).values(published=True))


def downgrade() -> None:
    op.drop_table('callback_signatures')
    op.drop_table('institution_circuits')
    op.drop_table('institution_secrets')
    op.drop_table('dead_letters')
    op.drop_table('deliveries')
