"""Engines and the LangChain tools that wrap them; never imports agents or graphs."""
