"""Operating the proxy: usage records (SQLite or PostgreSQL), Prometheus
metrics, and logging (request ids, JSON lines).

May import ``app.config`` only; the proxy calls into it, never the reverse.
"""
