"""Side-by-side PromQL compatibility harness: VigilOps against Prometheus 2.42.

The same generated OpenMetrics file is imported into both systems, then hundreds of query
cases are run through both HTTP APIs as instant and range queries, and the answers are
compared the way Prometheus's promql-compliance-tester does.

* `dataset` — the deterministic OpenMetrics file (counters, gauges, histograms, summaries,
  churn, gaps, awkward label values).
* `queries` — the query cases, expanded from templates.
* `compare` — comparison of two API responses, with a readable diff.
* `harness` — imports, starts the servers, runs every case, builds the report
  (``python -m vigilops.compat.promql_compat --report out.json``).
"""
