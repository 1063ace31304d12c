"""ps-sync's own database: id crosswalk, invoice postings, audit trail, exception queue, reference data.

Build a `Database` in the composition root, open `database.session()` and call the functions in
`ledger.repository` with it; they return the frozen records in `ledger.records`.
"""
