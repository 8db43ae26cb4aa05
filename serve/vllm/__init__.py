"""The vLLM launcher: `config` renders the config file and environment from a VllmSpec, `command` finds
the interpreter and builds the exact launch, `server` runs it as a process group until it is stopped."""
