"""One package per provider, each module one stage of it (see ``pipeline/agents/cascade``)."""
