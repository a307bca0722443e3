"""The HTTP API: OpenAI-compatible chat answered by the current version, knowledge jobs, versions, the page.

    POST /v1/chat/completions      chat (JSON, or server-sent events with "stream": true)
    GET  /v1/models                `current` and one id per version (`v0` is the base model)
    POST /v1/knowledge             {"text", "method"} or a file upload -> 202 {"id"}
    GET  /v1/jobs/{id}             queued | running | done | failed, with the stage or the reason
    GET  /v1/versions              the version timeline
    POST /v1/versions/{n}/activate rollback (or roll forward)
    GET  /                         the web page (chat, teach, versions)

Errors use OpenAI's body, `{"error": {"message", "type", "param", "code"}}`, so its clients report them.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from pathlib import Path
from typing import AsyncIterator

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException  # FastAPI's subclasses it; unknown routes raise this one

from ..methods.base import Context
from .engine import BusyError, Engine, version_id
from .jobs import JobBook, Worker
from .schemas import ChatRequest, KnowledgeRequest
from .security import BodyLimit, KeyCheck, api_error
from .settings import ServerSettings

STATIC = Path(__file__).parent / "static"
CHAT_TEMPLATE_TOKENS = 32  # room for the chat template and the answer instruction around a question


class APIError(Exception):
    """An error answered with OpenAI's error body; `param` names the field at fault."""

    def __init__(self, status: int, message: str, param: str | None = None, type_: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.type = status, message, param, type_


def create_app(engine: Engine, settings: ServerSettings | None = None, jobs_folder: Path | None = None) -> FastAPI:
    """The FastAPI application over `engine`. Jobs are kept in `jobs_folder` (default: `<store>/server-jobs`);
    jobs a previous process left running are reported failed, queued ones run again."""
    settings = settings or ServerSettings()
    book = JobBook(jobs_folder or engine.store.path / "server-jobs")
    worker = Worker(book, engine.inject)
    requeue = book.recover(engine.serving.version)
    max_context = min(settings.max_context_tokens or engine.max_context_tokens, engine.max_context_tokens)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker.start(requeue)
        yield
        worker.stop(timeout=1.0)

    app = FastAPI(title="selfparam", summary="A self-updating model behind an OpenAI-compatible API",
                  lifespan=lifespan)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.state.engine, app.state.jobs, app.state.worker = engine, book, worker
    chat_key = Depends(KeyCheck(settings.api_key, optional=settings.open_chat))
    admin_key = Depends(KeyCheck(settings.api_key))

    # -- errors -----------------------------------------------------------------------------------
    @app.exception_handler(APIError)
    async def on_api_error(request: Request, e: APIError) -> JSONResponse:
        return JSONResponse(api_error(e.status, e.message, e.type, e.param), status_code=e.status)

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, e: HTTPException) -> JSONResponse:
        kind = {401: "authentication_error", 404: "not_found_error", 409: "conflict_error"}.get(e.status_code,
                                                                                                "invalid_request_error")
        return JSONResponse(api_error(e.status_code, str(e.detail), kind), status_code=e.status_code,
                            headers=getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        errors = e.errors()
        fields = [".".join(str(p) for p in err["loc"] if p != "body") or "body" for err in errors]
        message = "; ".join(f"{f}: {err['msg']}" for f, err in zip(fields, errors))
        body = api_error(422, message, "invalid_request_error", fields[0] if fields else None)
        body["detail"] = [{"field": f, "message": err["msg"]} for f, err in zip(fields, errors)]
        return JSONResponse(body, status_code=422)

    # -- the page ---------------------------------------------------------------------------------
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "version": engine.serving.version, "busy": engine.busy, "queued": worker.queued,
                "needs_key": bool(settings.api_key), "open_chat": settings.open_chat}

    # -- chat -------------------------------------------------------------------------------------
    @app.get("/v1/models", dependencies=[chat_key])
    async def models() -> dict:
        current = engine.serving.version
        created = {v.number: _epoch(v.created) for v in engine.versions()}
        data = [{"id": "current", "object": "model", "created": created.get(current, 0), "owned_by": "selfparam",
                 "version": current}]
        data += [{"id": version_id(n), "object": "model", "created": t, "owned_by": "selfparam", "version": n,
                  "current": n == current} for n, t in created.items()]
        return {"object": "list", "data": data}

    @app.get("/v1/models/{model_id}", dependencies=[chat_key])
    async def model(model_id: str) -> dict:
        found = [m for m in (await models())["data"] if m["id"] == model_id]
        if not found:
            raise APIError(404, f"no model {model_id!r}: 'current' or v0..vN (GET /v1/models)", "model_id",
                           "not_found_error")
        return found[0]

    @app.post("/v1/chat/completions", dependencies=[chat_key])
    async def chat(req: ChatRequest):
        serving = engine.serving
        if req.model not in ("current", version_id(serving.version)):
            raise APIError(404, f"model {req.model!r} is not served: "
                                f"ask 'current' (now {version_id(serving.version)}); "
                                f"to answer from another version, activate it (POST /v1/versions/N/activate)",
                           "model", "not_found_error")
        try:
            question = req.question()
        except ValueError as e:
            raise APIError(422, str(e), "messages") from None
        max_new = req.max_completion_tokens or req.max_tokens or settings.default_max_new_tokens
        if max_new > settings.max_new_tokens:
            field = "max_completion_tokens" if req.max_completion_tokens else "max_tokens"
            raise APIError(422, f"{field}: {max_new} is above this server's limit of {settings.max_new_tokens}", field)
        prompt_tokens = await run_in_threadpool(engine.count_tokens, question)
        room = engine.lm.max_length - max_new - CHAT_TEMPLATE_TOKENS
        if prompt_tokens > room:
            raise APIError(413, f"messages: the question has {prompt_tokens} tokens; with {max_new} new tokens this "
                                f"model's window allows at most {room}", "messages", "request_too_large")
        version, text = await run_in_threadpool(engine.answer, question, max_new, serving)
        completion_tokens = await run_in_threadpool(engine.count_tokens, text)
        finish = "length" if completion_tokens >= max_new else "stop"
        reply = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": version_id(version),
                 "system_fingerprint": f"selfparam-{version_id(version)}"}
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        headers = {"X-Selfparam-Version": str(version)}
        if not req.stream:
            return JSONResponse({**reply, "object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish,
                 "logprobs": None}]}, headers=headers)
        include_usage = bool((getattr(req, "stream_options", None) or {}).get("include_usage"))
        return StreamingResponse(_sse(reply, text, finish, usage if include_usage else None),
                                 media_type="text/event-stream", headers={**headers, "Cache-Control": "no-cache"})

    # -- knowledge ----------------------------------------------------------------------------------
    @app.post("/v1/knowledge", status_code=202, dependencies=[admin_key])
    async def knowledge(request: Request) -> JSONResponse:
        body = await _knowledge_request(request)
        method = body.method or engine.method_name
        if method != engine.method_name:
            raise APIError(422, f"method: this server's store holds {engine.method_name!r} knowledge; "
                                f"{method!r} is served by a server started on a {method} store", "method")
        if not body.text.strip():
            raise APIError(422, "text: the document is empty", "text")
        n_tokens = await run_in_threadpool(engine.count_tokens, body.text)
        if n_tokens > max_context:
            raise APIError(413, f"text: the document has {n_tokens} tokens; this server injects at most {max_context} "
                                f"per document (the model's window and --max-context-tokens): split it", "text",
                           "request_too_large")
        if worker.queued >= settings.max_queued_jobs:
            raise APIError(429, f"{worker.queued} knowledge jobs are already waiting (the limit is "
                                f"{settings.max_queued_jobs}); submit this one when some have finished", None,
                           "rate_limit_error")
        job = book.new(method, [Context(body.id or "document", body.text)])
        worker.submit(job)
        return JSONResponse(job.public(), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})

    @app.get("/v1/jobs", dependencies=[admin_key])
    async def jobs() -> dict:
        return {"object": "list", "data": [j.public() for j in book.all()]}

    @app.get("/v1/jobs/{job_id}", dependencies=[admin_key])
    async def job(job_id: str) -> dict:
        found = book.get(job_id)
        if found is None:
            raise APIError(404, f"no job {job_id!r}", "job_id", "not_found_error")
        return found.public()

    # -- versions -----------------------------------------------------------------------------------
    @app.get("/v1/versions", dependencies=[admin_key])
    async def versions() -> dict:
        data = [{"id": version_id(v.number), "object": "knowledge.version", **v.to_dict()} for v in engine.versions()]
        return {"object": "list", "data": data, "current": engine.serving.version, "method": engine.method_name,
                "base_model": engine.store.base_model, "busy": engine.busy}

    @app.post("/v1/versions/{n}/activate", dependencies=[admin_key])
    async def activate(n: int) -> dict:
        try:
            version = await run_in_threadpool(engine.activate, n)
        except BusyError as e:
            raise APIError(409, str(e), None, "conflict_error") from None
        except ValueError as e:
            raise APIError(404, str(e), "n", "not_found_error") from None
        return {"id": version_id(version.number), "object": "knowledge.version", **version.to_dict()}

    return app


async def _knowledge_request(request: Request) -> KnowledgeRequest:
    """The document of a knowledge request: a JSON body, or a multipart upload (`file`, optional `method`)."""
    try:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form()
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise APIError(422, "file: upload the document as the form field 'file'", "file")
            raw = await upload.read()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise APIError(422, f"file: {upload.filename} is not UTF-8 text (byte {e.start}: {e.reason})",
                               "file") from None
            return KnowledgeRequest(text=text, method=form.get("method") or None,
                                    id=Path(upload.filename or "document").stem)
        return KnowledgeRequest.model_validate_json(await request.body())
    except ValidationError as e:
        raise RequestValidationError(e.errors()) from None


def _sse(reply: dict, text: str, finish: str, usage: dict | None):
    """The answer as OpenAI's stream of `chat.completion.chunk` events, then `[DONE]`."""
    def event(delta: dict, finish_reason: str | None) -> str:
        chunk = {**reply, "object": "chat.completion.chunk",
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]}
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    yield event({"role": "assistant", "content": ""}, None)
    for piece in re.findall(r"\s*\S+", text):  # word by word, spaces kept
        yield event({"content": piece}, None)
    yield event({}, finish)
    if usage is not None:
        yield f"data: {json.dumps({**reply, 'object': 'chat.completion.chunk', 'choices': [], 'usage': usage})}\n\n"
    yield "data: [DONE]\n\n"


def _epoch(iso: str) -> int:
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(iso).timestamp())
    except (TypeError, ValueError):
        return 0
