"""LangGraph state, graph assembly and checkpointer wiring."""
