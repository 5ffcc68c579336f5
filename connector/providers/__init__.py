"""SMS providers behind ports: the webhook addresses and the provider registry
(:mod:`~connector.providers.webhooks`), and one package per provider (``twilio/``).

The webhook route picks a provider by its path and the worker by the provider name stored
on each journal row; neither imports a provider to use it."""
