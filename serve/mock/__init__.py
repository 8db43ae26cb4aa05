"""The mock backend: a raw-asyncio server speaking OpenAI and Anthropic, with latency and answer models.

`server` runs it (`serve_one`, `running_mock`), `launch.serve_mock` in one process or `workers` on one port;
`http` parses HTTP/1.1; `openai` and `anthropic` are the dialects over `protocols`; `answers` makes the text;
`schedule` times it; `metrics` serves /metrics.
"""
