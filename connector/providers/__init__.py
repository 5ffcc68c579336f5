"""SMS providers behind one port: Twilio, and a Twilio-compatible local simulator."""
