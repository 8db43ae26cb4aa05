"""From a registry entry to a running server: `plan` turns NAME[:VARIANT] and the serve flags into a
backend spec and launch (starts nothing)."""
