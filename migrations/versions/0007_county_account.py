"""county accounts on county mirror rows: a county login finds the county's current pupil (R-L2)

* ``source_record.county_account_index``: the keyed hash (``identity.protection.county_account_index``,
  never the clear account) of the account a county source reports for a current pupil, with a
  partial index (rows without one, most of them, cost nothing). Filled by the next sync of each
  county source whose export carries ``county_account`` / 縣市帳號.

Revision ID: 0007_county_account
Revises: 0006
Create Date: 2026-12-02 05:55:19.311916

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007_county_account'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('source_record', schema=None) as batch_op:
        batch_op.add_column(sa.Column('county_account_index', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_source_record_county_account_index', ['county_account_index'], unique=False, postgresql_where=sa.text('county_account_index IS NOT NULL'), sqlite_where=sa.text('county_account_index IS NOT NULL'))


def downgrade():
    with op.batch_alter_table('source_record', schema=None) as batch_op:
        batch_op.drop_index('ix_source_record_county_account_index', postgresql_where=sa.text('county_account_index IS NOT NULL'), sqlite_where=sa.text('county_account_index IS NOT NULL'))
        batch_op.drop_column('county_account_index')

