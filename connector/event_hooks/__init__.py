"""Event hooks: how events reach subscribers' URLs (the HTTP adapter of the events port)."""
