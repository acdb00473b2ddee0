"""CDR intake: files and JSON of charge detail records in, sessions out (docs/cdr-csv.md).

``profiles`` (column sets) → ``reader`` (the file, streamed) → ``validation`` (the one validator
of every door) → ``store`` (sessions, exactly once) → ``jobs`` (import jobs: chunks, checkpoint,
error report) and ``ocpi`` (OCPI CDR JSON as records).
"""
