"""Twilio Media Streams: μ-law 8 kHz audio as base64 in JSON text frames on ``/stream``."""
