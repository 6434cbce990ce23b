"""The LLM runtime: the embedded model, grammar-constrained decoding, the OpenAI-compatible server."""
