// The page over the API: chat with the current version, teach a document, roll back. No build step.
"use strict";

const $ = (id) => document.getElementById(id);
const keyInput = $("key");
keyInput.value = localStorage.getItem("selfparam-key") || "";
keyInput.addEventListener("change", () => { localStorage.setItem("selfparam-key", keyInput.value); refresh(); });

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (keyInput.value) headers["Authorization"] = "Bearer " + keyInput.value;
  if (options.json !== undefined) { headers["Content-Type"] = "application/json"; options.body = JSON.stringify(options.json); }
  const response = await fetch(path, { ...options, headers });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error((body.error && body.error.message) || response.statusText);
  return body;
}

function addTurn(who, text, tag, cls) {
  const div = document.createElement("div");
  div.className = "turn" + (cls ? " " + cls : "");
  const name = document.createElement("span"); name.className = "who"; name.textContent = who + ":";
  const content = document.createElement("span"); content.className = "text"; content.textContent = text;
  div.append(name, content);
  if (tag) { const t = document.createElement("span"); t.className = "tag"; t.textContent = tag; div.append(t); div.dataset.version = tag; }
  $("log").append(div);
  $("log").scrollTop = $("log").scrollHeight;
  return div;
}

$("chat-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  addTurn("you", question);
  $("ask").disabled = true;
  try {
    const reply = await api("/v1/chat/completions", { method: "POST",
      json: { model: "current", messages: [{ role: "user", content: question }] } });
    const turn = addTurn("model", reply.choices[0].message.content || "(empty answer)", reply.model);
    turn.classList.add("answer");
  } catch (e) {
    addTurn("error", e.message, null, "error");
  } finally {
    $("ask").disabled = false;
  }
});

let watching = null;
$("teach-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("doc").value;
  $("teach").disabled = true;
  try {
    const job = await api("/v1/knowledge", { method: "POST", json: { text } });
    showJob(job);
    watching = job.id;
    watchJob(job.id);
  } catch (e) {
    showJob({ state: "failed", error: e.message });
    $("teach").disabled = false;
  }
});

function showJob(job) {
  const el = $("job");
  el.className = "job " + job.state;
  el.dataset.state = job.state;
  let text = job.state;
  if (job.state === "running" && job.progress) text += ": " + (job.progress.stage || "") + (job.progress.elapsed_s != null ? " (" + job.progress.elapsed_s + " s)" : "");
  if (job.state === "done") text += ": version " + job.version + " is serving (" + job.elapsed_s + " s)";
  if (job.state === "failed") text += ": " + job.error;
  el.textContent = text;
}

async function watchJob(id) {
  while (watching === id) {
    try {
      const job = await api("/v1/jobs/" + encodeURIComponent(id));
      showJob(job);
      if (job.state === "done" || job.state === "failed") { $("teach").disabled = false; watching = null; refresh(); return; }
    } catch (e) {
      showJob({ state: "failed", error: e.message }); $("teach").disabled = false; watching = null; return;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function activate(n, button) {
  button.disabled = true;
  try { await api("/v1/versions/" + n + "/activate", { method: "POST" }); }
  catch (e) { alert(e.message); }
  refresh();
}

let shownVersions = "";
function renderVersions(list) {
  const key = JSON.stringify(list);
  if (key === shownVersions) return;  // unchanged: keep the buttons (and any click on them) as they are
  shownVersions = key;
  const ol = $("versions");
  ol.replaceChildren();
  for (const v of [...list.data].reverse()) {
    const li = document.createElement("li");
    li.id = "version-" + v.number;
    li.className = v.current ? "current" : "";
    const what = v.number === 0 ? "base model" : v.contexts.map((c) => c.id + " (" + c.chars + " chars)").join(", ");
    li.append(document.createTextNode(v.id + (v.current ? " · serving " : " ")));
    if (!v.current) {
      const b = document.createElement("button");
      b.className = "activate"; b.dataset.n = v.number; b.textContent = v.number < list.current ? "roll back" : "activate";
      b.disabled = list.busy;
      b.addEventListener("click", () => activate(v.number, b));
      li.append(b);
    }
    const meta = document.createElement("span"); meta.className = "meta";
    meta.textContent = what + (v.parent != null ? " · from v" + v.parent : "") + " · " + v.created.replace("T", " ").replace("+00:00", " UTC");
    li.append(meta);
    ol.append(li);
  }
}

async function refresh() {
  try {
    const health = await fetch("/health").then((r) => r.json());
    $("status").textContent = "serving v" + health.version + (health.busy ? " · learning…" : "");
    renderVersions(await api("/v1/versions"));
  } catch (e) {
    $("status").textContent = e.message;
  }
}

refresh();
setInterval(refresh, 3000);
