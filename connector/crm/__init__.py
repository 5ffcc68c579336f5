"""The connector's tables on Dataverse: one mapping module (``tables``) and the adapters on it.

Conversation writer, phone directory, configuration store, conversation re-linker and the
message archive read for exports. Built on the Web API client library in ``connector.dataverse``.
"""
