"""ministry-compatible clients: apps moving over from the ministry's service (R-O4, issue 11)

* ``oauth_client.subject_format``: ``opaque`` (every existing client keeps the subjects it has) or
  ``uuid`` (the same pairwise subject written as a UUID, for apps that store ``sub`` in UUID columns).
* ``oauth_client.ministry_compatible``: registered as an app moving over from the ministry's service
  (its scopes, UUID subjects by default, ``eduinfo`` without asking, gzip eduinfo as the ministry).

Revision ID: 0008_ministry_client
Revises: 0007_county_account
Create Date: 2026-12-02 05:57:10.603404

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008_ministry_client'
down_revision = '0007_county_account'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('oauth_client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subject_format', sa.String(length=8), server_default='opaque', nullable=False))
        batch_op.add_column(sa.Column('ministry_compatible', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('oauth_client', schema=None) as batch_op:
        batch_op.drop_column('ministry_compatible')
        batch_op.drop_column('subject_format')
