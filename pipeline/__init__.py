"""Transport-agnostic per-call pipeline: audio conversion, endpointing, turns, playout.

Nothing in this package imports ``transports`` or ``bridge``: transports plug in through
:class:`pipeline.ports.CallPort`, agents through :class:`pipeline.agents.base.Agent`.
"""
