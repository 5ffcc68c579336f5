"""A Twilio-compatible SMS simulator: the Messages REST API, signed inbound webhooks, callbacks."""
