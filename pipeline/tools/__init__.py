"""Tools the LLM agents may call during a call: HTTP endpoints, MCP servers, and the bridge's
own (transfer to a person). One interface for all (``base.py``); each call gets a
:class:`~pipeline.tools.toolbox.Toolbox` of what its persona and transport allow."""
