"""Indexes for the compound list's text search (compounds.selectors.compound_search).

On a 1M registry every search (typed as you go on the compounds page) was a full scan of
the table twice (the count and the page): 1-4 s a keystroke. Each branch of the search's
OR now has an index, so PostgreSQL answers with a BitmapOr of index scans:

- name contains: a trigram GIN index on UPPER(name) (pg_trgm is a trusted extension since
  PostgreSQL 13: a database owner may create it);
- external id equals (case-insensitive): a btree on UPPER(external_id) (in Meta.indexes);
- InChIKey prefix: the selector now asks for the upper-cased prefix, which the unique
  column's varchar_pattern_ops index serves;
- canonical SMILES equals: a hash index (a btree entry cannot hold a very long SMILES).

The trigram and hash indexes are PostgreSQL-only, so they are made here rather than in
Meta.indexes; SQLite (`make run`) scans, as before.
"""

from django.db import migrations, models
from django.db.models.functions import Upper

POSTGRES_SQL = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS compound_name_trgm_idx ON compounds_compound USING gin (UPPER(name) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS compound_smiles_hash_idx ON compounds_compound USING hash (canonical_smiles)",
]
POSTGRES_REVERSE_SQL = [
    "DROP INDEX IF EXISTS compound_name_trgm_idx",
    "DROP INDEX IF EXISTS compound_smiles_hash_idx",
]


def _run(statements: list[str]):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor != "postgresql":
            return
        for sql in statements:
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):

    dependencies = [
        ("compounds", "0005_assay_plausible_range"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="compound",
            index=models.Index(Upper("external_id"), name="compound_external_id_upper_idx"),
        ),
        migrations.RunPython(_run(POSTGRES_SQL), _run(POSTGRES_REVERSE_SQL)),
    ]
