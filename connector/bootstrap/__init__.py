"""The composition root (being assembled in this package)."""
