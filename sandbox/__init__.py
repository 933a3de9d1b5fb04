"""The project's own DingTalk sandbox: a local server speaking the real Stream protocol and OpenAPI."""

from sandbox.dingtalk.server import SandboxServer, build_app
from sandbox.dingtalk.state import SandboxConfig

__all__ = ["SandboxConfig", "SandboxServer", "build_app"]
