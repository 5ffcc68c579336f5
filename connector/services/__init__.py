"""Use cases: inbound, outbound, sessions, consent, sync, export. Depend on ports only."""
