"""Turn a checkpoint into a smaller checkpoint: bitsandbytes, llm-compressor, memory estimates, manifests."""
