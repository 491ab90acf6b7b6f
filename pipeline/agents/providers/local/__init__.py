"""Offline stages for the cascade: the local agent's hearing (Whisper tiny.en) and voice
(piper, or espeak-ng), with no network and no keys. Needs the ``local`` extra."""
