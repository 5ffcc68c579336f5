"""Use cases: inbound (and its batch coordinator), sessions and their actions, escalation,
conversation moves, phone sync, record resolution, setup, export. Depend on ports only."""
