"""The local state store (SQLAlchemy Core): journal, outbox, phone index, dedupe keys."""
