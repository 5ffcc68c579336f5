"""Background work: the huey queue and periodic jobs."""
