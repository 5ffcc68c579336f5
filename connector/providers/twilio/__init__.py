"""Twilio: webhook signatures and forms, the REST client, error codes, MMS media downloads."""
