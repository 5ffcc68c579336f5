"""Background work: the huey queue and the registration of its tasks (the journal drain and
sweep, the phone sync, the escalation sweep). Never imports the web API."""
