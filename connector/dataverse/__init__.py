"""Dataverse Web API client library: auth, transport, retry, client, OData helpers, $batch."""
