"""`selfparam serve`: the self-updating model behind an OpenAI-compatible API, with a web page."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..lm import DEFAULT_MODEL
from .core import DeviceOpt, DtypeOpt
from .errors import err, user_errors


@user_errors
def serve(
    model: Annotated[Optional[str], typer.Option(help="the base model (default: the store's, else smollm2-135m)")]
    = None,
    store: Annotated[Path, typer.Option(help="the knowledge store (versions); created when missing or empty")]
    = Path("selfparam-store"),
    method: Annotated[str, typer.Option(help="method of a new store (an existing store keeps its own)")] = "selfparam",
    method_config: Annotated[Optional[Path], typer.Option(help="JSON of the method's settings, e.g. "
                                                                '{"targets": {"n_pairs": 20}, "train": {"epochs": 1}}')]
    = None,
    host: Annotated[str, typer.Option(help="address to listen on; 127.0.0.1 keeps the server to this machine")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    api_key_env: Annotated[Optional[str], typer.Option(help="environment variable holding the Bearer key")] = None,
    open_chat: Annotated[bool, typer.Option(help="chat and /v1/models need no key (teaching and versions still do)")]
    = False,
    insecure_no_key: Annotated[bool, typer.Option(help="allow listening beyond loopback with no key")] = False,
    max_body_bytes: Annotated[int, typer.Option(help="largest request body (413 above)")] = 1_000_000,
    max_context_tokens: Annotated[Optional[int], typer.Option(help="longest document to inject, in tokens "
                                                                   "(default: what the model's window allows)")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="largest max_tokens a chat request may ask for")] = 256,
    max_queued_jobs: Annotated[int, typer.Option(help="knowledge jobs allowed to wait (429 above)")] = 16,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
) -> None:
    """Serve chat from the store's current version; documents posted to /v1/knowledge become new versions."""
    import uvicorn

    from ..lm import load_lm
    from ..server import Engine, ServerSettings, create_app
    from ..server.setup import method_settings, open_or_create_store
    from ..store import StoreLockedError

    key = None
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            raise ValueError(f"--api-key-env: the environment variable {api_key_env} is not set or empty")
    if not key and not insecure_no_key and not _loopback(host):
        raise ValueError(f"--host {host}: anyone who can reach it could change the model; set --api-key-env "
                         f"(or pass --insecure-no-key)")
    settings = ServerSettings(api_key=key, open_chat=open_chat, max_body_bytes=max_body_bytes,
                              max_context_tokens=max_context_tokens, max_new_tokens=max_new_tokens,
                              max_queued_jobs=max_queued_jobs)
    knowledge = open_or_create_store(store, method, model or DEFAULT_MODEL, explicit_model=model)
    config = method_settings(knowledge.method_name, method_config)
    try:
        knowledge.hold()  # this server is the store's one writer while it runs
    except StoreLockedError as e:
        raise ValueError(f"--store: {e}") from None
    try:
        lm = load_lm(knowledge.base_model, device=device, dtype=dtype)
        engine = Engine(knowledge, lm, config)
        err.print(f"selfparam serve: {knowledge.method_name} on {lm.name}, version {engine.serving.version} of "
                  f"{store}; http://{host}:{port}/  (key {'required' if key else 'not set'})")
        uvicorn.run(create_app(engine, settings), host=host, port=port, log_level="warning")
    finally:
        knowledge.close()
    if engine.busy:
        # training cannot be cut short cleanly: leave now; the next start reports the job failed (nothing
        # of it was written) and the last complete version serves
        err.print("stopped during an injection: it was dropped and will be reported failed at the next start")
        os._exit(1)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
