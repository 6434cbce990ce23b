// edgeai's chat page: talks to the Agent Server routes langgraph_sdk uses (POST /threads,
// POST /threads/{id}/runs/stream, POST /threads/search, GET /threads/{id}/state), reads the SSE
// stream with fetch + ReadableStream (EventSource cannot POST), draws one card per node step as
// it arrives (plan table, offloading decision, model outputs, plots), keeps threads in the
// sidebar and resumes an approval interrupt with command {resume}. Text goes in with
// textContent only: nothing a server or a person wrote is parsed as HTML.
"use strict";

const ASSISTANT = "edgeai";
const FINAL_NODES = new Set(["respond", "report_missing", "finish_training"]);
const $ = (id) => document.getElementById(id);
const current = { threadId: null, busy: false, turn: null };

// ---- the API ------------------------------------------------------------------------------

function headers(extra = {}) {
  const token = sessionStorage.getItem("edgeai.token") || "";
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

class ApiError extends Error {}

async function failure(response) {
  let detail = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (typeof body.detail === "string") detail = body.detail;
    else if (Array.isArray(body.detail)) {
      detail = body.detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
    }
  } catch (_) { /* not JSON: keep the status line */ }
  if (response.status === 401) detail += " — enter the server's API token under Settings";
  return new ApiError(detail);
}

async function api(method, path, body) {
  const init = { method, headers: headers(body ? { "Content-Type": "application/json" } : {}) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  return response.status === 204 ? null : response.json();
}

// Server-sent events from a fetch body: blocks split on blank lines, `event:` and `data:` fields
// (several data lines join with "\n"), comments (": ping") skipped; CRLF, CR and LF all end a line.
async function* sse(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let carry = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    let text = carry + value;
    carry = "";
    if (text.endsWith("\r")) { carry = "\r"; text = text.slice(0, -1); } // maybe half a CRLF
    buffer += text.replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const part = parseBlock(block);
      if (part) yield part;
    }
  }
  const last = parseBlock(buffer);
  if (last) yield last;
}

function parseBlock(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length) return null;
  try {
    return { event, data: JSON.parse(data.join("\n")) };
  } catch (_) {
    return { event, data: data.join("\n") };
  }
}

// One streamed run: its steps drawn as they come; then the thread's state decides whether an
// approval waits.
async function streamRun(body) {
  const path = `/threads/${encodeURIComponent(current.threadId)}/runs/stream`;
  const response = await fetch(path, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
    body: JSON.stringify({ assistant_id: ASSISTANT, stream_mode: ["custom", "values"], ...body }),
  });
  if (!response.ok) throw await failure(response);
  for await (const { event, data } of sse(response)) {
    if (event === "custom" && data && data.step) renderStep(data.step, current.turn);
    else if (event === "custom" && data && data.progress) renderProgress(data.progress, current.turn);
    else if (event === "error") addMessage(current.turn.el, "error", `${data.error}: ${data.message}`);
  }
  const state = await api("GET", `/threads/${encodeURIComponent(current.threadId)}/state`);
  showApproval(state.interrupts || []);
  return state;
}

function runOptions() {
  const raw = $("options").value.trim();
  if (!raw) return {};
  let options;
  try {
    options = JSON.parse(raw);
  } catch (err) {
    throw new ApiError(`run options are not JSON: ${err.message}`);
  }
  if (!options || typeof options !== "object" || Array.isArray(options)) {
    throw new ApiError("run options must be a JSON object, e.g. {\"seed\": 1}");
  }
  return options;
}

async function busy(label, work) {
  if (current.busy) return;
  current.busy = true;
  setControls();
  status(label);
  try {
    await work();
    if ($("approval").hidden) status("done");
  } catch (err) {
    status(err.message, true);
    if (current.turn) addMessage(current.turn.el, "error", err.message);
  } finally {
    current.busy = false;
    setControls();
    refreshThreads().catch(() => {});
  }
}

// Ask: a new thread when none is open, the request as a human message, then the streamed run.
async function send(request, options) {
  request = (request ?? $("request").value).trim();
  if (!request) return;
  await busy("running…", async () => {
    const context = options ?? runOptions();
    if (!current.threadId) {
      const thread = await api("POST", "/threads", { metadata: { title: request.slice(0, 80) } });
      openThread(thread.thread_id, request);
    }
    $("request").value = "";
    current.turn = newTurn(request);
    await streamRun({ input: { request }, context });
  });
}

// Answer the pending approval interrupt: "yes" runs the generated code, "no" runs nothing.
async function resume(answer) {
  if (!current.threadId || current.busy) return;
  await busy(answer === "yes" ? "approved: running…" : "rejecting…", async () => {
    showApproval([]);
    if (!current.turn) current.turn = newTurn(null);
    await streamRun({ command: { resume: answer } });
  });
}

// ---- threads --------------------------------------------------------------------------------

function threadTitle(thread) {
  const values = thread.values || {};
  const first = (values.messages || []).find((m) => m.type === "human");
  return (thread.metadata && thread.metadata.title) || (first && first.content)
    || values.request || thread.thread_id.slice(0, 8);
}

async function refreshThreads() {
  const threads = await api("POST", "/threads/search", { limit: 50, sort_order: "desc" });
  const list = $("threads");
  list.replaceChildren();
  for (const thread of threads) {
    const item = el("li", threadTitle(thread));
    item.dataset.threadId = thread.thread_id;
    item.title = thread.thread_id;
    if (thread.thread_id === current.threadId) item.classList.add("current");
    if (thread.status !== "idle") item.append(el("span", thread.status, "badge"));
    item.addEventListener("click", () => loadThread(thread.thread_id));
    list.append(item);
  }
  return threads;
}

function openThread(threadId, title) {
  current.threadId = threadId;
  current.turn = null;
  $("thread-title").textContent = title || threadId;
  history.replaceState(null, "", threadId ? `#thread=${encodeURIComponent(threadId)}` : "#");
  for (const item of $("threads").children) {
    item.classList.toggle("current", item.dataset.threadId === threadId);
  }
}

function newThread() {
  if (current.busy) return;
  openThread(null, "New thread");
  $("log").replaceChildren();
  showApproval([]);
  status("");
}

// A thread's turns from its state: each finished turn's request, the steps of its last run (a
// run killed midway left steps that a later run of the same turn replaced) and its answer; then
// the turn in flight, if one waits for approval.
async function loadThread(threadId) {
  if (current.busy) return;
  const state = await api("GET", `/threads/${encodeURIComponent(threadId)}/state`);
  const values = state.values || {};
  openThread(threadId, values.request || threadId);
  $("log").replaceChildren();
  const byTurn = new Map();
  for (const step of values.trace || []) {
    if (!byTurn.has(step.turn)) byTurn.set(step.turn, []);
    byTurn.get(step.turn).push(step);
  }
  const turns = values.history || [];
  const lastRun = (steps) => steps.filter((s) => s.run === steps[steps.length - 1].run);
  turns.forEach((turn, i) => {
    current.turn = newTurn(turn.request);
    const steps = lastRun(byTurn.get(i) || []);
    steps.forEach((s) => renderStep(s, current.turn));
    if (!steps.some((s) => FINAL_NODES.has(s.node))) addMessage(current.turn.el, "ai", turn.answer);
  });
  const open = byTurn.get(turns.length);
  if (values.request && (open || (state.interrupts || []).length)) {
    current.turn = newTurn(values.request);
    lastRun(open || []).forEach((s) => renderStep(s, current.turn));
  }
  showApproval(state.interrupts || []);
  status(state.interrupts && state.interrupts.length ? "waiting for your approval" : "");
  return state;
}

// ---- drawing ------------------------------------------------------------------------------

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function status(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

function setControls() {
  $("send").disabled = current.busy;
  $("approve").disabled = current.busy;
  $("reject").disabled = current.busy;
}

function addMessage(parent, kind, text) {
  const message = el("div", text, `msg ${kind}`);
  parent.append(message);
  message.scrollIntoView({ block: "end" });
  return message;
}

function newTurn(request) {
  const turn = el("div", null, "turn");
  if (request) addMessage(turn, "human", request);
  const steps = el("div", null, "steps");
  turn.append(steps);
  $("log").append(turn);
  return { el: turn, steps };
}

const fmt = (x, digits = 3) => (typeof x === "number" ? Number(x.toPrecision(digits)) : (x ?? "–"));

function table(columns, rows) {
  const t = el("table");
  const head = el("tr");
  columns.forEach((c) => head.append(el("th", c)));
  t.append(head);
  for (const row of rows) {
    const tr = el("tr");
    row.forEach((cell) => tr.append(el("td", fmt(cell))));
    t.append(tr);
  }
  return t;
}

// An object's plain fields on one line: "name digits · n_train 300 · ..."
function keyValues(obj) {
  const fields = Object.entries(obj || {}).filter(([, v]) => v === null || typeof v !== "object");
  return el("div", fields.map(([k, v]) => `${k} ${fmt(v)}`).join(" · "), "line fields");
}

// What each node's step shows; a node not named here shows its fields as JSON.
const STEP_VIEWS = {
  plan_request(step, card) {
    const plan = step.plan || {};
    if (step.effective_request && step.effective_request !== plan.request) {
      card.append(el("div", `understood as: ${step.effective_request}`, "line"));
    }
    const subtasks = plan.subtasks || [];
    if (subtasks.length) {
      card.append(table(["#", "sub-task", "model", "device", "after"],
        subtasks.map((s) => [s.id, s.goal, s.model, s.device, (s.deps || []).join(", ")])));
    }
    if ((plan.unsupported || []).length) {
      card.append(el("div", `not served: ${plan.unsupported.join("; ")}`, "line"));
    } else if (!subtasks.length) {
      card.append(el("div", "no registered model serves this request", "line"));
    }
    card.append(el("div", `planner: ${step.planner || plan.planner || "?"}`, "line"));
  },
  choose_models(step, card) {
    card.append(table(["#", "model", "device", "tier"],
      (step.selection || []).map((s) => [s.subtask, s.model, s.device, s.tier])));
  },
  place_work(step, card) {
    card.append(table(["#", "model", "runs on", "how", "share", "latency (s)", "energy (J)"],
      (step.placements || []).map((p) => [p.subtask, p.model, p.runs_on, p.mode,
        p.share == null ? "–" : `${Math.round(p.share * 100)}%`, p.latency_s, p.energy_j])));
    const score = step.offloading && step.offloading.score;
    if (score) {
      const unit = score.objective === "min_energy" ? "J" : "s";
      card.append(el("div", `objective ${score.objective} = ${fmt(score.objective_value)} ${unit}`
        + ` (mean latency ${fmt(score.mean_latency_s)} s, total energy ${fmt(score.total_energy_j)} J`
        + `, ${score.feasible ? "feasible" : "infeasible"})`, "line objective"));
    } else {
      card.append(el("div", "nothing to offload: each model runs where it is hosted", "line"));
    }
  },
  run_models(step, card) {
    for (const r of step.results || []) {
      const text = r.status === "ok" ? (r.summary || JSON.stringify(r.outputs)) : `not run: ${r.error}`;
      card.append(el("div", `${r.model}: ${text}`, "line"));
    }
  },
  prepare_training(step, card) { card.append(keyValues(step.data)); },
  generate_code(step, card) {
    card.append(el("div", `trial ${step.trial}, proposed by ${step.source}`, "line"));
    card.append(keyValues(step.config));
    if ((step.rejected || []).length) {
      card.append(el("div", `${step.rejected.length} proposal(s) failed validation`, "line"));
    }
  },
  approve_code(step, card) {
    card.append(el("div", step.approved ? "approved: the code runs in the sandbox"
      : "not approved: nothing runs", "line"));
  },
  run_training(step, card) {
    const t = step.trial || {};
    card.append(el("div", `trial ${t.trial}: ${t.status}, validation accuracy ${fmt(t.val_accuracy)}`
      + `, test accuracy ${fmt(t.test_accuracy)}, ${t.rounds} rounds`, "line"));
  },
  tune_training(step, card) {
    card.append(el("div", step.stop ? `stop: ${step.stop}` : "another trial, in a narrower space",
      "line"));
  },
  register_model(step, card) {
    card.append(el("div", step.model ? `registered ${step.model} (trial ${step.trial})`
      : "nothing registered", "line"));
  },
};

function renderStep(step, turn) {
  turn = turn || (current.turn = newTurn(null));
  const card = el("div", null, "step");
  card.dataset.node = step.node;
  const head = el("div", step.node.replaceAll("_", " "), "head");
  if (typeof step.seconds === "number") head.append(el("span", `${fmt(step.seconds, 2)} s`, "secs"));
  card.append(head);
  const view = STEP_VIEWS[step.node];
  if (view) view(step, card);
  else if (!FINAL_NODES.has(step.node)) {
    const raw = el("details");
    raw.append(el("summary", "details"), el("pre", JSON.stringify(step, null, 2)));
    card.append(raw);
  }
  for (const image of step.images || []) showImage(card, image);
  turn.steps.append(card);
  if (FINAL_NODES.has(step.node) && step.answer) addMessage(turn.el, "ai", step.answer);
  card.scrollIntoView({ block: "end" });
  return card;
}

function renderProgress(event, turn) {
  const fields = Object.entries(event).filter(([k, v]) => k !== "event" && typeof v !== "object");
  const text = `${event.event}: ${fields.map(([k, v]) => `${k} ${fmt(v)}`).join(", ")}`;
  (turn || current.turn).steps.append(el("div", text, "step progress"));
}

// An image a step names: a data:image URL as it is, else a file under the data home's runs/ or
// bench/ fetched from /files/ with the token (an <img src> could not send it) as a blob URL.
async function showImage(card, name) {
  const img = el("img");
  img.alt = name.startsWith("data:") ? "plot" : name;
  if (name.startsWith("data:image/")) {
    img.src = name;
    card.append(img);
    return img;
  }
  if (!/^(runs|bench)\//.test(name) || name.split("/").includes("..")) return null;
  const path = "/files/" + name.split("/").map(encodeURIComponent).join("/");
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) {
    card.append(el("div", `(plot ${name} is not available)`, "line"));
    return null;
  }
  img.src = URL.createObjectURL(await response.blob());
  card.append(img);
  return img;
}

function showApproval(interrupts) {
  const ask = interrupts.map((i) => i.value).find((v) => v && v.kind === "approve_code");
  $("approval").hidden = !ask;
  if (!ask) return;
  $("approval-question").textContent = `${ask.question} (trial ${ask.trial})`;
  $("approval-config").textContent = JSON.stringify(ask.config, null, 2);
  $("approval-code").textContent = ask.code || "";
  status("waiting for your approval");
}

// ---- wiring ---------------------------------------------------------------------------------

function start() {
  $("token").value = sessionStorage.getItem("edgeai.token") || "";
  $("token").addEventListener("change", () => {
    sessionStorage.setItem("edgeai.token", $("token").value.trim());
    refreshThreads().then(() => status(""), (err) => status(err.message, true));
  });
  $("options").value = sessionStorage.getItem("edgeai.options") || "";
  $("options").addEventListener("change", () => sessionStorage.setItem("edgeai.options",
                                                                        $("options").value));
  $("ask").addEventListener("submit", (e) => { e.preventDefault(); send(); });
  $("request").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(); }
  });
  $("new-thread").addEventListener("click", newThread);
  $("approve").addEventListener("click", () => resume("yes"));
  $("reject").addEventListener("click", () => resume("no"));
  const wanted = new URLSearchParams(location.hash.slice(1)).get("thread");
  refreshThreads()
    .then(() => (wanted ? loadThread(wanted) : null))
    .catch((err) => status(err.message, true));
}

window.edgeai = { send, resume, loadThread, refreshThreads, newThread, renderStep, showImage,
                  sse, current };
document.addEventListener("DOMContentLoaded", start);
