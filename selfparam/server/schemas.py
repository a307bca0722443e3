"""Request bodies, as the OpenAI chat API and our knowledge endpoint define them (validated by pydantic,
so a bad field is a 422 that names it)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls ... are accepted and not used

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(part.text for part in self.content)
        return self.content or ""


class ChatRequest(BaseModel):
    """`POST /v1/chat/completions`. Decoding is greedy: temperature, top_p and the like are accepted and
    have no effect (every answer is the version's deterministic answer)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int = Field(default=1, ge=1, le=1, description="one answer per request")
    stream: bool = False

    def question(self) -> str:
        """The last user turn: each question is answered alone, in the words the injection trained on."""
        users = [m for m in self.messages if m.role == "user" and m.text().strip()]
        if not users:
            raise ValueError("messages: no user message with text to answer")
        return users[-1].text()


class KnowledgeRequest(BaseModel):
    """`POST /v1/knowledge` as JSON: a document to teach the model."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    method: str | None = Field(default=None, description="the store's method (the default); no other is served")
    id: str | None = Field(default=None, max_length=200, description="a name for the document (default: the job id)")
