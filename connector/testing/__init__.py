"""Shipped fakes and test helpers, type-checked against connector.ports."""
