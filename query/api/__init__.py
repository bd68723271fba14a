"""The Prometheus HTTP API v1 (`/api/v1/...`): parameters, JSON and handlers."""
