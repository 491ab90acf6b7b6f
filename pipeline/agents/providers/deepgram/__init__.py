"""Deepgram's streaming models (Nova-3, Flux, Aura), reached directly or through Cloudflare."""
