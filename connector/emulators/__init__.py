"""Stand-ins shipped for local mode and tests: a Dataverse Web API emulator and a Twilio simulator.

Production code reaches them only through ``connector.bootstrap`` (local mode); the
``connector emulator`` / ``connector simulator`` commands run them alone. They raise their own
errors, never the product's.
"""
