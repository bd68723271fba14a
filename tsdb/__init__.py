"""VigilOps's time-series database: head, WAL, blocks, compaction, retention, backfill.

The public surface is the two seams in `tsdb.api` (Appender, Querier), the value types in
`tsdb.model`, the errors in `tsdb.errors` and `tsdb.db.DB`, which owns everything else.
"""
