"""The cascaded OpenAI agent: transcription -> streamed chat -> streamed speech, per sentence.

Each stage can live on its own OpenAI-compatible server (a local Whisper server, Ollama or
vLLM for chat, a speech server), so one call may mix cloud and local stages.
"""
