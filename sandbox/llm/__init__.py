"""The project's OpenAI-compatible LLM stub: deterministic streamed answers and injectable faults."""

from sandbox.llm.answers import STUB_MARK
from sandbox.llm.server import StubLLMServer, build_app
from sandbox.llm.state import Behaviour, StubState

__all__ = ["STUB_MARK", "Behaviour", "StubLLMServer", "StubState", "build_app"]
