"""identity: fewer indexes and room for in-place updates where every sync writes (R-S2, issue 3 item 8)

* ``source_record``: one unique index on (blind_index, source) replaces the unique (source, blind_index)
  and the index on blind_index: leading with the blind index, it serves both look-ups.
* ``affiliation``: the index on person_id goes; the unique constraint already leads with person_id.
* PostgreSQL: ``fillfactor`` 90 on both tables, so a changed mirror row or an affiliation marked
  ``left`` can usually be rewritten in its own page without touching any index (a HOT update).
  It applies to pages written from now on; ``VACUUM FULL`` rewrites older ones when convenient.

On a large database the new unique index is built while the table is locked (about 15 s per
3.5 million rows on a 2-core machine).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 22:12:29.832051

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('affiliation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_affiliation_person_id'))

    with op.batch_alter_table('source_record', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_source_record_blind_index_source', ['blind_index', 'source'])
        batch_op.drop_constraint('uq_source_record_source_blind_index', type_='unique')
        batch_op.drop_index('ix_source_record_blind_index')

    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE source_record SET (fillfactor = 90)')
        op.execute('ALTER TABLE affiliation SET (fillfactor = 90)')


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE source_record RESET (fillfactor)')
        op.execute('ALTER TABLE affiliation RESET (fillfactor)')

    with op.batch_alter_table('source_record', schema=None) as batch_op:
        batch_op.create_index('ix_source_record_blind_index', ['blind_index'], unique=False)
        batch_op.create_unique_constraint('uq_source_record_source_blind_index', ['source', 'blind_index'])
        batch_op.drop_constraint('uq_source_record_blind_index_source', type_='unique')

    with op.batch_alter_table('affiliation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_affiliation_person_id'), ['person_id'], unique=False)
