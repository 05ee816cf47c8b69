"""What kind of lender an institution is (bank, consumer-finance, trust, microcredit), beside its definition, so the
funding disclosures read a trust's loans as their own source on every analytics engine; and each stored definition
names the currency its amounts are in

Revision ID: 0028
Revises: 0026
"""
import json

from alembic import op
import sqlalchemy as sa


revision = '0028'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Definitions stored before carry no kind: NULL, counted as an institution as they were.
    with op.batch_alter_table('institutions') as batch:
        batch.add_column(sa.Column('kind', sa.String(32), nullable=True))
    # A definition stored before read its amounts in the book's currency (its products', the first in order): write
    # it in, so the institution keeps it whatever products come later. A book without a product has none to write.
    conn = op.get_bind()
    book = conn.execute(sa.text('SELECT MIN(currency) FROM products')).scalar()
    if book is None:
        return
    for code, definition in conn.execute(sa.text('SELECT code, definition FROM institutions')).all():
        data = json.loads(definition)
        if data.get('currency') is None:
            data['currency'] = book
            conn.execute(
                sa.text('UPDATE institutions SET definition = :definition WHERE code = :code'),
                {'definition': json.dumps(data, separators=(',', ':')), 'code': code},
            )


def downgrade() -> None:
    with op.batch_alter_table('institutions') as batch:
        batch.drop_column('kind')
