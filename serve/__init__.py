"""Turn a model into an OpenAI-compatible endpoint: vLLM launcher, transformers and mock backends, pull."""
