"""The agent runner: claims queued messages, runs the agent, streams replies back."""
