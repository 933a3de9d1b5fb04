"""The project's own external peers (DingTalk stand-in, LLM stub) for tests and the sandbox."""
