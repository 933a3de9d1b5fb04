"""The DingTalk stand-in: Stream gateway, OpenAPI endpoints, control API and chat page."""
