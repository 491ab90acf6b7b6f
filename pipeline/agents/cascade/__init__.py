"""The cascaded agent: speech to text, chat and text to speech, each stage chosen apart."""
