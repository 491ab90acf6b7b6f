"""OpenAI and OpenAI-compatible servers: transcription, chat and speech stages."""
