"""Turn a model into an OpenAI-compatible endpoint: vLLM launcher, transformers backend, mock backend, pull."""
