"""The local state store (SQLAlchemy Core; SQLite or PostgreSQL): the ingress journal (and
its dedupe keys), the session mirror and caches, the phone index, resolution memory."""
