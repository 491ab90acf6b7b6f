"""BRIDGE_AGENT=backend: any Twilio-ready voice agent server behind every call."""
