"""One idempotency store: the API's stored creates (`api_requests`) and the drawdowns' own keys move into
`idempotency_keys`, whose keys are now scoped by their caller

A key made through the API is already "role/tenant/key"; one given on the command line (or to the library) gets the
CLI's scope, "cli/key"; matching's key for a drawdown's origination gets matching's, "matching/drawdown-<id>". A
drawdown's stored response is the drawdown: {"drawdown_id": id}. Where an API create's key was also used for a money
call, the money call's row is kept.

Revision ID: 0014
Revises: 0013
"""
import hashlib
import json
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

API_SCOPES = ('operator/', 'institution/', 'borrower/', 'collections/')
SERVICING_OPERATIONS = ('originate', 'repay', 'prepay', 'recover', 'write_off', 'settle_referral_fees', 'reverse')
CLI = 'cli/'
MATCHING = 'matching/'

store = sa.table(
    'idempotency_keys',
    sa.column('key', sa.String),
    sa.column('operation', sa.String),
    sa.column('request_hash', sa.String),
    sa.column('response', sa.Text),
    sa.column('created_at', sa.String),
)
api_requests = sa.table(
    'api_requests',
    sa.column('scope_key', sa.String),
    sa.column('operation', sa.String),
    sa.column('request_hash', sa.String),
    sa.column('status_code', sa.Integer),
    sa.column('response', sa.Text),
    sa.column('created_at', sa.String),
)
drawdowns = sa.table(
    'drawdowns',
    sa.column('id', sa.BigInteger),
    sa.column('idempotency_key', sa.String),
    sa.column('line_id', sa.Text),
    sa.column('amount', sa.BigInteger),
    sa.column('tenor', sa.Integer),
)


def _scoped(key: str) -> str:
    return key if key.startswith(API_SCOPES) else CLI + key


def _request_hash(operation: str, payload: dict) -> str:
    """As `openice.idempotency.request_hash` computes it at this revision."""
    text = json.dumps({'op': operation, **payload}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table('idempotency_keys') as batch:
        batch.alter_column('key', existing_type=sa.String(length=200), type_=sa.String(length=400),
                           existing_nullable=False)
    internal = (store.c.operation == 'originate') & store.c.key.like('drawdown-%')
    op.execute(
        store.update()
        .where(sa.and_(*(~store.c.key.like(scope + '%') for scope in API_SCOPES)), ~internal)
        .values(key=sa.literal(CLI) + store.c.key)
    )
    op.execute(store.update().where(internal).values(key=sa.literal(MATCHING) + store.c.key))
    conn = op.get_bind()
    now = datetime.now(UTC).isoformat(timespec='milliseconds')
    taken = {r.key for r in conn.execute(sa.select(store.c.key))}
    rows = []
    for d in conn.execute(sa.select(drawdowns).order_by(drawdowns.c.id)):
        key = _scoped(d.idempotency_key)
        if key not in taken:
            taken.add(key)
            request = {'line_id': d.line_id, 'amount': d.amount, 'tenor': d.tenor}
            rows.append(dict(key=key, operation='drawdown', request_hash=_request_hash('drawdown', request),
                             response=json.dumps({'drawdown_id': d.id}), created_at=now))
    if rows:
        conn.execute(store.insert(), rows)
    op.execute(
        store.insert().from_select(
            ['key', 'operation', 'request_hash', 'response', 'created_at'],
            sa.select(api_requests.c.scope_key, api_requests.c.operation, api_requests.c.request_hash,
                      api_requests.c.response, api_requests.c.created_at)
            .where(~sa.exists().where(store.c.key == api_requests.c.scope_key)),
        )
    )
    op.drop_table('api_requests')
    with op.batch_alter_table('drawdowns') as batch:
        batch.drop_column('idempotency_key')


def downgrade() -> None:
    op.create_table('api_requests',
    sa.Column('scope_key', sa.String(length=400), nullable=False),
    sa.Column('operation', sa.String(length=64), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('response', sa.Text(), nullable=True),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('scope_key')
    )
    creates = ~store.c.operation.in_((*SERVICING_OPERATIONS, 'drawdown'))
    op.execute(
        api_requests.insert().from_select(
            ['scope_key', 'operation', 'request_hash', 'status_code', 'response', 'created_at'],
            sa.select(store.c.key, store.c.operation, store.c.request_hash,
                      sa.case((store.c.response.is_not(None), 201)), store.c.response, store.c.created_at)
            .where(creates),
        )
    )
    op.execute(store.delete().where(creates))
    with op.batch_alter_table('drawdowns') as batch:
        batch.add_column(sa.Column('idempotency_key', sa.String(length=200), nullable=True))
    conn = op.get_bind()
    for row in conn.execute(sa.select(store.c.key, store.c.response).where(store.c.operation == 'drawdown')):
        key = row.key[len(CLI):] if row.key.startswith(CLI) else row.key
        drawdown_id = json.loads(row.response)['drawdown_id']
        conn.execute(drawdowns.update().where(drawdowns.c.id == drawdown_id).values(idempotency_key=key))
    op.execute(
        drawdowns.update()
        .where(drawdowns.c.idempotency_key.is_(None))
        .values(idempotency_key=sa.literal('drawdown-key-') + sa.cast(drawdowns.c.id, sa.String))
    )
    op.execute(store.delete().where(store.c.operation == 'drawdown'))
    with op.batch_alter_table('drawdowns') as batch:
        batch.alter_column('idempotency_key', existing_type=sa.String(length=200), nullable=False)
        batch.create_unique_constraint('drawdowns_idempotency_key_key', ['idempotency_key'])
    for scope in (CLI, MATCHING):
        op.execute(
            store.update().where(store.c.key.like(scope + '%')).values(key=sa.func.substr(store.c.key, len(scope) + 1))
        )
    with op.batch_alter_table('idempotency_keys') as batch:
        batch.alter_column('key', existing_type=sa.String(length=400), type_=sa.String(length=200),
                           existing_nullable=False)
