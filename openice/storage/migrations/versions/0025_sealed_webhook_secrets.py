"""Gateway: the institutions' webhook signing secrets are stored encrypted under the PII key (AES-GCM, bound to the
institution), no longer in clear. Secrets already stored are encrypted here, which needs the key ($OPENICE_PII_KEY)
when there are any; going down decrypts them again.

Revision ID: 0025
Revises: 0023
"""
from alembic import op
import sqlalchemy as sa


revision = '0025'
down_revision = '0023'
branch_labels = None
depends_on = None

SECRETS = sa.table(
    'institution_secrets',
    sa.column('institution_code', sa.Text),
    sa.column('current', sa.Text),
    sa.column('previous', sa.Text),
)


def _pending(value: str | None, seal: bool) -> bool:
    """Whether a stored value still needs the change: a clear secret is hex, a sealed one "v2:<key id>:<base64>"."""
    return value is not None and (':' in value) != seal


def _recode(seal: bool) -> None:
    """Encrypt (or, going down, decrypt) every stored secret; the key is needed only if there is one."""
    from openice.decisioning.pii import ENV_KEY, PiiVault
    from openice.decisioning.repository import check_pii_key
    from openice.errors import Unavailable
    from openice.storage.gateway_tables import secret_context

    conn = op.get_bind()
    rows = [r for r in conn.execute(sa.select(SECRETS)) if _pending(r.current, seal) or _pending(r.previous, seal)]
    if not rows:
        return
    vault = PiiVault.from_env_if_set()
    if vault is None:
        raise Unavailable(
            "is not set, and webhook signing secrets are stored: set it to this database's PII key to "
            + ("encrypt" if seal else "decrypt")
            + " them",
            field=ENV_KEY,
        )
    check_pii_key(conn, vault)
    for row in rows:
        context = secret_context(row.institution_code)
        change = vault.encrypt if seal else vault.decrypt
        values = {name: getattr(row, name) for name in ('current', 'previous')}
        conn.execute(
            SECRETS.update()
            .where(SECRETS.c.institution_code == row.institution_code)
            .values({k: change(context, v) if _pending(v, seal) else v for k, v in values.items()})
        )


def upgrade() -> None:
    with op.batch_alter_table('institution_secrets') as batch:
        batch.alter_column('current', type_=sa.Text, existing_type=sa.String(128), existing_nullable=False)
        batch.alter_column('previous', type_=sa.Text, existing_type=sa.String(128), existing_nullable=True)
    _recode(seal=True)


def downgrade() -> None:
    _recode(seal=False)
    with op.batch_alter_table('institution_secrets') as batch:
        batch.alter_column('current', type_=sa.String(128), existing_type=sa.Text, existing_nullable=False)
        batch.alter_column('previous', type_=sa.String(128), existing_type=sa.Text, existing_nullable=True)
