"""Voice agents behind the pipeline's one small seam (:mod:`pipeline.agents.base`)."""
