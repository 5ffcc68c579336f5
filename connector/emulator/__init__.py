"""A Dataverse-compatible Web API server for local mode, tests and benchmarks."""
