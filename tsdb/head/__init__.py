"""The head: recent samples in memory, queryable immediately."""
