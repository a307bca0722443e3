"""What a running server allows: its key, who may chat, and the size limits of requests."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ServerSettings:
    """The limits and access rules of one server (the model and store are given to the `Engine`)."""

    api_key: str | None = field(default=None, metadata={
        "help": "Bearer key required for knowledge, job and version endpoints (and chat unless open_chat)"})
    open_chat: bool = field(default=False, metadata={"help": "chat and model listing need no key even when one is set"})
    max_body_bytes: int = field(default=1_000_000, metadata={"help": "largest request body accepted (413 above)"})
    max_context_tokens: int | None = field(default=None, metadata={
        "help": "longest document accepted for injection, in tokens (413 above); None: what the model's window allows"})
    max_new_tokens: int = field(default=256, metadata={"help": "largest max_tokens a chat request may ask for"})
    default_max_new_tokens: int = field(default=64, metadata={"help": "answer length when a request names none"})
    max_queued_jobs: int = field(default=16, metadata={"help": "knowledge jobs waiting at most (429 above)"})

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_new_tokens", "default_max_new_tokens", "max_queued_jobs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.max_context_tokens is not None and self.max_context_tokens < 1:
            raise ValueError(f"max_context_tokens: must be >= 1, got {self.max_context_tokens}")
        if self.default_max_new_tokens > self.max_new_tokens:
            raise ValueError(f"default_max_new_tokens: {self.default_max_new_tokens} is above max_new_tokens "
                             f"{self.max_new_tokens}")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("api_key: the key is empty")
