"""Dataverse Web API access: auth, client, OData helpers, $batch, schema installer."""
