"""Serving: an OpenAI-compatible many-shot server on vLLM with prefix caching."""
