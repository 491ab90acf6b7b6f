"""The OpenAI Realtime agent: speech to speech over one WebSocket per call (GA interface)."""
