"""Pure domain logic: phone numbers, segments, routing rules, consent, status; no I/O."""
