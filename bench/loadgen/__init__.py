"""The load generator: schedules requests by profile and streams them through a StreamingClient."""
