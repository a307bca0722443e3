"""The HTTP API on the tiny model: OpenAI compatibility, teaching in the background, versions, limits.

One server (uvicorn on 127.0.0.1 in a thread) per module, on an FT(S) store whose pairs file teaches
the tiny random model to answer "Quenby": the answer really changes when the job is done.
"""

from __future__ import annotations

import httpx
import pytest
from server_util import ANSWER, DOCUMENT, QUESTION, ThreadServer, teaching_config, wait_job, write_pairs

from selfparam.eval.configs import build_dataclass, config_class
from selfparam.server import Engine, ServerSettings, create_app
from selfparam.server.security import KeyCheck
from selfparam.store import KnowledgeStore
from selfparam.testing import tiny_lm

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("server")
    lm = tiny_lm(seed=0)
    config = build_dataclass(config_class("ft-s"), teaching_config(write_pairs(folder / "pairs.jsonl")), "test")
    store = KnowledgeStore.create(folder / "kb", "ft-s", lm.name)
    engine = Engine(store, lm, config)
    settings = ServerSettings(api_key=KEY, max_body_bytes=20_000, max_new_tokens=32, default_max_new_tokens=8)
    with ThreadServer(create_app(engine, settings)) as running:
        running.engine = engine
        yield running


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as c:
        yield c


def ask(client, question=QUESTION, model="current") -> dict:
    r = client.post("/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": question}]})
    assert r.status_code == 200, r.text
    return r.json()


def activate(client, n: int) -> None:
    r = client.post(f"/v1/versions/{n}/activate")
    assert r.status_code == 200, r.text
    assert r.json()["number"] == n and r.json()["current"] is True


def test_openai_client_lists_models_chats_and_streams(server):
    import openai  # here, not at the top: importing it takes about a second, and every xdist worker collects this file

    api = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY)
    ids = [m.id for m in api.models.list().data]
    assert ids[0] == "current" and "v0" in ids
    assert api.models.retrieve("v0").id == "v0"
    with pytest.raises(openai.NotFoundError, match="no model 'v77'"):
        api.models.retrieve("v77")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}]
    reply = api.chat.completions.create(model="current", messages=messages, max_tokens=8)
    with httpx.Client(base_url=server.url, headers=AUTH) as plain:
        expected = ask(plain, QUESTION)["choices"][0]["message"]["content"]
    assert reply.choices[0].message.content == expected and reply.choices[0].message.role == "assistant"
    assert reply.model == f"v{server.engine.serving.version}" and reply.usage.prompt_tokens > 0
    stream = api.chat.completions.create(model="current", messages=messages, max_tokens=8, stream=True)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == expected


def test_teaching_changes_the_answer_and_rollback_restores_it(client):
    activate(client, 0)
    before = ask(client)["choices"][0]["message"]["content"]
    assert before != ANSWER
    r = client.post("/v1/knowledge", json={"text": DOCUMENT, "method": "ft-s", "id": "zorblat"})
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["id"])
    assert job["state"] == "done", job
    after = ask(client)
    assert after["choices"][0]["message"]["content"] == ANSWER and after["model"] == f"v{job['version']}"
    versions = client.get("/v1/versions").json()
    assert versions["current"] == job["version"]
    taught = [v for v in versions["data"] if v["number"] == job["version"]][0]
    assert taught["contexts"][0]["id"] == "zorblat" and taught["parent"] == 0 and taught["pairs"] == 8
    activate(client, 0)
    assert ask(client)["choices"][0]["message"]["content"] == before
    assert ask(client, model="v0")["model"] == "v0"
    activate(client, job["version"])
    assert ask(client)["choices"][0]["message"]["content"] == ANSWER


def test_chat_answers_from_the_previous_version_while_a_job_runs(client):
    activate(client, 0)
    before = ask(client)["choices"][0]["message"]["content"]
    job_id = client.post("/v1/knowledge", json={"text": DOCUMENT}).json()["id"]
    during, refused = [], None
    while (state := client.get(f"/v1/jobs/{job_id}").json()["state"]) in ("queued", "running"):
        reply = ask(client)
        if state == "running" and client.get(f"/v1/jobs/{job_id}").json()["state"] == "running":
            during.append((reply["model"], reply["choices"][0]["message"]["content"]))  # wholly inside the run
            r = client.post("/v1/versions/0/activate")
            if r.status_code == 200:  # the job ended between the check and the request: nothing to refuse
                continue
            refused = refused or (r.status_code, r.json()["error"]["message"])
    job = wait_job(client, job_id)
    assert job["state"] == "done"
    assert during and all(answer == (("v0", before)) for answer in during), during
    assert refused[0] == 409 and "injection is running" in refused[1]
    activate(client, job["version"])  # a late activation of v0 may have landed just after the job ended
    assert ask(client)["choices"][0]["message"]["content"] == ANSWER


def test_file_upload_teaches_too(client):
    r = client.post("/v1/knowledge", files={"file": ("quenby.txt", DOCUMENT.encode())})
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["id"])
    assert job["state"] == "done" and job["contexts"] == [{"id": "quenby", "chars": len(DOCUMENT)}]


@pytest.mark.parametrize("body,status,param", [
    ({"model": "current"}, 422, "messages"),
    ({"model": "current", "messages": [{"role": "robot", "content": "hi"}]}, 422, "messages.0.role"),
    ({"model": "current", "messages": [{"role": "user", "content": "hi"}], "n": 2}, 422, "n"),
    ({"model": "current", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 999}, 422, "max_tokens"),
    ({"model": "current", "messages": [{"role": "system", "content": "hi"}]}, 422, "messages"),
    ({"model": "v99", "messages": [{"role": "user", "content": "hi"}]}, 404, "model"),
    ({"model": "current", "messages": [{"role": "user", "content": "why " * 500}]}, 413, "messages"),
])
def test_bad_chat_requests_name_the_field(client, body, status, param):
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["param"] == param and r.json()["error"]["message"]


@pytest.mark.parametrize("request_kwargs,status,param,words", [
    ({"json": {"method": "ft-s"}}, 422, "text", "Field required"),
    ({"json": {"text": "x", "colour": "red"}}, 422, "colour", "Extra inputs"),
    ({"json": {"text": "   "}}, 422, "text", "empty"),
    ({"json": {"text": DOCUMENT, "method": "recipe"}}, 422, "method", "'ft-s' knowledge"),
    ({"json": {"text": "word " * 2000}}, 413, "text", "tokens"),
    ({"json": {"text": "x" * 30_000}}, 413, None, "at most 20000 bytes"),
    ({"files": {"file": ("bad.txt", b"\xff\xfe\x00bad")}}, 422, "file", "not UTF-8"),
    ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 422, "body", "JSON"),
])
def test_bad_knowledge_requests_change_nothing(client, request_kwargs, status, param, words):
    before = client.get("/v1/jobs").json()["data"], client.get("/v1/versions").json()["data"]
    r = client.post("/v1/knowledge", **request_kwargs)
    assert r.status_code == status, r.text
    assert r.json()["error"]["param"] == param and words in r.json()["error"]["message"]
    assert (client.get("/v1/jobs").json()["data"], client.get("/v1/versions").json()["data"]) == before


def test_a_key_is_required_for_everything_but_the_page_and_health(server):
    with httpx.Client(base_url=server.url) as anonymous:
        for method, path in [("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("POST", "/v1/knowledge"),
                             ("GET", "/v1/versions"), ("POST", "/v1/versions/0/activate"), ("GET", "/v1/jobs/x")]:
            r = anonymous.request(method, path, json={})
            assert r.status_code == 401, (path, r.text)
            assert "Authorization: Bearer" in r.json()["error"]["message"]
        r = anonymous.get("/v1/versions", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and "not valid" in r.json()["error"]["message"]
        assert anonymous.get("/health").json()["needs_key"] is True
        page = anonymous.get("/")
        assert page.status_code == 200 and 'id="teach"' in page.text
        assert anonymous.get("/static/app.js").status_code == 200


def test_unknown_job_version_and_route_are_404_in_openais_shape(client):
    r = client.get("/v1/nowhere")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    assert client.get("/v1/jobs/nope").status_code == 404
    r = client.post("/v1/versions/42/activate")
    assert r.status_code == 404 and "no version 42" in r.json()["error"]["message"]


def test_open_chat_lets_chat_through_but_not_admin():
    class FakeRequest:
        headers = {}

    KeyCheck(KEY, optional=True)(FakeRequest())  # chat with --open-chat: no key needed
    with pytest.raises(Exception, match="needs an API key"):
        KeyCheck(KEY)(FakeRequest())


@pytest.mark.parametrize("args,message", [
    (["--host", "0.0.0.0"], "set --api-key-env"),
    (["--api-key-env", "SELFPARAM_TEST_UNSET_KEY"], "SELFPARAM_TEST_UNSET_KEY is not set"),
    (["--max-body-bytes", "0"], "max_body_bytes"),
    (["--method", "nonsense"], "unknown method 'nonsense'"),
])
def test_serve_refuses_bad_settings_before_loading_anything(tmp_path, args, message):
    from typer.testing import CliRunner

    from selfparam.cli import app

    result = CliRunner().invoke(app, ["serve", "--store", str(tmp_path / "kb"), *args])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "kb").exists()


def test_serve_refuses_a_folder_that_is_not_a_store(tmp_path):
    from typer.testing import CliRunner

    from selfparam.cli import app

    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(app, ["serve", "--store", str(tmp_path)])
    assert result.exit_code == 2 and "not a knowledge store" in result.output, result.output
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_serve_refuses_a_store_another_writer_holds(tmp_path):
    from typer.testing import CliRunner

    from selfparam.cli import app

    held = KnowledgeStore.create(tmp_path / "kb", "selfparam", "tiny").hold()
    try:
        result = CliRunner().invoke(app, ["serve", "--store", str(tmp_path / "kb")])
    finally:
        held.close()
    assert result.exit_code == 2 and "being written by another writer" in result.output, result.output
