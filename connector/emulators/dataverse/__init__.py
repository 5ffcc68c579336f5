"""A Dataverse-compatible Web API server for local mode, tests and benchmarks.

Embed it with ``connector.bootstrap.server_thread.running(create_emulator_app())`` (in
memory) or
``create_emulator_app(db_path="file.db")``; run it with ``connector emulator --port P --db FILE``.
The Web API lives at ``/api/data/v9.2/`` (any bearer token unless a :class:`TokenService`
validates them), ``GET /_emulator/stats`` and ``POST /_emulator/reset`` help tests, and
``bulk.bulk_load`` fills a table fast. Module map: ``app`` (ASGI), ``router`` (dispatch,
imports the handlers), ``state`` (store, schema, counters; what the handlers import),
``records``/``entity_api``/``reads``/``query`` (rows and queries), ``batch``, ``changes``,
``fetchxml``, ``metadata_api``/``tables``/``metadata_shapes`` (schema), ``standard``/``seed``
(tables), ``store`` (SQLite), ``limits`` (service protection), ``errors`` (the refusal),
``token_service``, ``tls``.
"""
