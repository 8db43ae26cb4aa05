"""The transformers backend: an OpenAI-compatible FastAPI app over a continuous-batching engine.

`server` starts it (`HfServeSpec`, `serve_hf`, `running_hf`); `app` is the FastAPI app, `schema` its
request models, `engine` the batching loop, `sequence` one request's state, `render` the responses.
Importing this package imports nothing heavy; `server` and `engine` import torch.
"""
