"""Pure domain logic: phone numbers, record routing, conversations, segments, message status,
provider messages; no I/O and no SDK."""
