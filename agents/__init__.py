"""Agent nodes (planner, model selector, offloading, ...) and the LLM backends they share."""
