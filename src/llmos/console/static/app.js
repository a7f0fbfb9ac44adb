// The llmos console: a hash-routed page per part of a model's life, each drawn from the
// answers of the HTTP control plane. See llmos/console/__init__.py for how the token is kept.
import * as api from "./api.js";
import { bars, grid, lines } from "./charts.js";
import { validate } from "./schema.js";
import { append, card, clear, fmt, h, link, problem, table, when } from "./ui.js";

// what each role may do, to decide which controls to show (the server decides requests)
const READS = ["data:read", "models:read", "jobs:read", "deployments:read", "metrics:read", "feedback:read"];
const RIGHTS = {
  admin: ["*"],
  developer: [...READS, "data:write", "train", "jobs:write", "models:write", "deployments:write", "predict", "adapt"],
  viewer: READS,
};
const session = { user: null, role: null };
const can = (permission) => {
  const rights = RIGHTS[session.role] || [];
  return rights.includes("*") || rights.includes(permission);
};
// a control that changes state: shown only to a role that may use it
const change = (permission, node) => {
  if (!can(permission)) return null;
  node.dataset.change = permission;
  return node;
};

const PAGES = [
  ["overview", "Overview", overview],
  ["datasets", "Datasets", datasets],
  ["train", "Train", train],
  ["jobs", "Jobs", jobs],
  ["models", "Models", models],
  ["deployments", "Deployments", deployments],
  ["playground", "Playground", playground],
  ["monitoring", "Monitoring", monitoring],
  ["audit", "Audit", audit, "audit:read"],
  ["admin", "Admin", admin, "users:admin"],
];
const EXTRA = { compare, run: modelPage, job: jobPage, dataset: datasetPage };

const root = document.getElementById("app");
let leaving = new AbortController(); // aborts the page's streams when it is left

api.whenSignedOut((message) => signIn(`Signed out: ${message}`));

function signIn(message) {
  session.user = session.role = null;
  leaving.abort();
  const field = h("input", { type: "password", id: "token", name: "token", autocomplete: "off", placeholder: "llmos_…", required: true, size: 50 });
  const note = h("p", { id: "signin-message", class: message ? "error" : "muted", role: "status" },
    message || "Sign in with an llmos token (llmos auth token create). It is kept in this tab only.");
  const form = h("form", { id: "signin", class: "card narrow", onsubmit: async (e) => {
    e.preventDefault();
    api.remember(field.value.trim());
    const failed = await start();
    if (failed) { api.forget(); clear(note, failed); note.className = "error"; }
  } }, h("h1", {}, "llmos console"), note, h("label", {}, "Token ", field), " ", h("button", { type: "submit" }, "Sign in"));
  clear(root, form);
  if (location.hash && location.hash !== "#/") sessionStorage.setItem("llmos.next", location.hash);
}

// who the token speaks for; a message when the console cannot be used with it
async function start() {
  if (!api.token()) return "no token";
  let found;
  try { found = await api.get("/console/session"); } catch (err) { return err.message; }
  if (!found.role) {
    // no usable token, or a server without authentication: the API's answer says which
    try { await api.get("/v1/deployments"); } catch (err) { return err.message; }
    found = { user: "anonymous", role: "admin" };
  }
  if (found.role === "app") return "an app token may only call its deployments: sign in with a user's token";
  Object.assign(session, found);
  let projects = [];
  try { projects = await api.get("/v1/projects"); } catch { /* a server without projects */ }
  if (!projects.some((p) => p.name === api.project())) api.useProject("");
  layout(projects);
  const next = sessionStorage.getItem("llmos.next");
  sessionStorage.removeItem("llmos.next");
  // setting the hash it already has fires no hashchange: draw the page then
  const target = next || (!location.hash || location.hash === "#/" ? "#/overview" : location.hash);
  if (target !== location.hash) location.hash = target; else route();
  return null;
}

function layout(projects) {
  const nav = h("nav", {}, PAGES.filter((p) => !p[3] || can(p[3])).map(([key, title]) => h("a", { href: `#/${key}`, id: `nav-${key}` }, title)));
  // the project switcher: what the server lists for this token; a change redraws the page
  const current = api.project() || "default";
  const pick = projects.length > 1 ? h("select", { id: "project", "aria-label": "project", onchange: () => { api.useProject(pick.value === "default" ? "" : pick.value); route(); } },
    projects.map((p) => h("option", { value: p.name, selected: p.name === current }, p.name))) : null;
  const who = h("span", { id: "who" }, `${session.user} (${session.role})`);
  const out = h("button", { id: "signout", class: "link", onclick: () => { api.forget(); signIn("Signed out."); } }, "Sign out");
  clear(root, h("header", {}, h("strong", {}, "llmos"), nav, h("span", { class: "grow" }), pick ? h("label", {}, "project ", pick) : null, " ", who, out), h("main", { id: "main" }));
}

let routed = 0; // which route() call is the latest: an older one still drawing must not win

async function route() {
  if (!session.role) return;
  leaving.abort();
  leaving = new AbortController();
  const mine = ++routed;
  const [key, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const arg = rest.map(decodeURIComponent).join("/");
  const page = PAGES.find((p) => p[0] === key);
  const render = page ? page[2] : EXTRA[key];
  const main = document.getElementById("main");
  delete main.dataset.ready; // set again once this page is drawn
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.id === `nav-${key}`));
  if (!render) { clear(main, problem(`no page ${key}`)); return; }
  clear(main, h("p", { class: "muted" }, "Loading…"));
  const body = h("div", { id: `page-${key}`, class: "page" });
  try {
    await render(body, arg, leaving.signal);
    if (mine !== routed) return; // the user went on (a hash change, a project switch) meanwhile
    clear(main, body);
  } catch (err) {
    if (err.name === "AbortError" || mine !== routed) return;
    if (err.status !== 401) clear(main, problem(err.message, "page-error"));
  }
  main.dataset.ready = key;
}

window.addEventListener("hashchange", route);

// ---------------------------------------------------------------- overview
async function overview(body) {
  const [kernel, running, queued, deps, alerts] = await Promise.all([
    api.get("/v1/kernel"), api.get("/v1/jobs?state=running"), api.get("/v1/jobs?state=queued"),
    api.get("/v1/deployments"), api.get("/v1/alerts?limit=10"),
  ]);
  append(body,
    h("h1", {}, "Overview"),
    h("div", { class: "cards" },
      card("Kernel",
        h("p", { id: "kernel-state" }, kernel.running ? `running (pid ${kernel.pid})` : "not running (starts on the next job)"),
        h("p", {}, `queued ${kernel.queued}, active ${kernel.active}`),
        h("p", { class: "muted" }, `capacity: ${kernel.capacity.cpus} CPUs, ${kernel.capacity.gpus} GPUs, ${kernel.capacity.memory_mb} MB`)),
      card("Jobs", jobTable([...running, ...queued], "no running or queued job")),
      card("Deployments", table(deps, [
        { title: "name", value: (d) => d.name }, { title: "model", value: (d) => link(`#/run/${d.model}`, d.model) },
        { title: "kind", value: (d) => d.kind }, { title: "revision", value: (d) => d.revision },
      ], { empty: "no deployment", id: "overview-deployments" })),
      card("Recent alerts", alertTable(alerts))));
}

function alertTable(alerts) {
  return table(alerts, [
    { title: "when", value: (a) => when(a.created_at) }, { title: "deployment", value: (a) => a.deployment },
    { title: "check", value: (a) => a.check }, { title: "message", value: (a) => a.message },
  ], { empty: "no alert" });
}

// ---------------------------------------------------------------- datasets
async function datasets(body) {
  const list = await api.get("/v1/datasets");
  append(body, h("h1", {}, "Datasets"));
  if (can("data:write")) body.append(uploadForm());
  body.append(card("Versions", table(list, [
    { title: "dataset", value: (d) => link(`#/dataset/${d.ref}`, d.ref) }, { title: "rows", value: (d) => d.rows },
    { title: "labels", value: (d) => d.labels }, { title: "format", value: (d) => d.format },
    { title: "source", value: (d) => d.source }, { title: "created", value: (d) => when(d.created_at) },
  ], { empty: "no dataset yet", id: "dataset-list" })));
}

function uploadForm() {
  let file = null;
  const chosen = h("span", { id: "chosen" }, "no file chosen");
  const picker = h("input", { type: "file", id: "file", accept: ".csv,.tsv,.jsonl,.parquet,.conll,.txt", onchange: () => pick(picker.files[0]) });
  const name = h("input", { id: "dataset-name", placeholder: "name", required: true });
  const label = h("input", { id: "dataset-label", placeholder: "label column (optional)" });
  const pii = h("select", { id: "dataset-pii" }, ["off", "report", "redact", "reject"].map((v) => h("option", { value: v }, v)));
  const bar = h("progress", { id: "upload-progress", max: 1, value: 0 });
  const status = h("div", { id: "upload-status", role: "status" });
  function pick(f) {
    file = f || null;
    chosen.textContent = file ? `${file.name} (${file.size} bytes)` : "no file chosen";
    if (file && !name.value) name.value = file.name.replace(/\.[^.]+$/, "").replace(/[^A-Za-z0-9._-]/g, "-");
  }
  const zone = h("div", { id: "dropzone", class: "dropzone",
    ondragover: (e) => { e.preventDefault(); zone.classList.add("over"); },
    ondragleave: () => zone.classList.remove("over"),
    ondrop: (e) => { e.preventDefault(); zone.classList.remove("over"); pick(e.dataTransfer.files[0]); },
  }, "Drop a CSV, TSV, JSONL, Parquet or CoNLL file here, or ", picker, h("br"), chosen);
  const button = h("button", { type: "submit", id: "upload" }, "Upload");
  const form = h("form", { class: "card", id: "upload-form", onsubmit: async (e) => {
    e.preventDefault();
    if (!file) { clear(status, problem("choose a file first")); return; }
    const data = new FormData();
    data.append("file", file, file.name);
    data.append("name", name.value.trim());
    if (label.value.trim()) data.append("label", label.value.trim());
    data.append("pii", pii.value);
    button.disabled = true;
    clear(status, "uploading…");
    try {
      const done = await api.upload("/v1/datasets", data, (f) => { bar.value = f; });
      bar.value = 1;
      clear(status, h("p", { class: "ok", id: "upload-done" }, `${done.created ? "stored" : "already stored as"} ${done.ref}: ${done.rows} rows`),
        done.pii ? piiTable(done.pii) : null, link(`#/dataset/${done.ref}`, "open it"));
      document.querySelector("#dataset-list")?.replaceWith(h("p", {}, link("#/datasets", "refresh the list")));
    } catch (err) {
      bar.value = 0;
      clear(status, problem(err.message, "upload-error"));
    } finally { button.disabled = false; }
  } }, h("h2", {}, "Upload"), zone, h("p", {}, name, " ", label, " PII ", pii, " ", button), bar, status);
  change("data:write", button);
  return form;
}

function piiTable(columns) {
  return h("div", { id: "pii" }, h("h3", {}, "PII report"), table(columns, [
    { title: "column", value: (c) => c.column }, { title: "found", value: (c) => JSON.stringify(c.counts ?? c) },
  ], { empty: "no PII found" }));
}

async function datasetPage(body, ref) {
  const [info, rows] = await Promise.all([api.get(`/v1/datasets/${encodeURIComponent(ref)}`), api.get(`/v1/datasets/${encodeURIComponent(ref)}/rows?limit=10`)]);
  const versions = await api.get(`/v1/datasets?name=${encodeURIComponent(info.name)}`);
  const dist = Object.entries(info.label_distribution || {}).map(([label, value]) => ({ label, value }));
  append(body,
    h("h1", {}, `Dataset ${info.ref}`),
    h("p", {}, `${info.rows} rows, ${info.format}, ${info.size_bytes} bytes, from ${info.source}; label column ${info.label_column ?? "—"}`),
    h("div", { class: "cards" },
      card("Schema", table(info.columns, [
        { title: "column", value: (c) => c.name }, { title: "type", value: (c) => c.dtype ?? c.type ?? "" },
        { title: "details", value: (c) => Object.entries(c).filter(([k]) => !["name", "dtype", "type"].includes(k)).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ") },
      ], { id: "schema" })),
      card("Label distribution", dist.length ? bars(dist, { label: "label distribution" }) : h("p", { class: "muted" }, "no label column")),
      card("Versions", table(versions, [
        { title: "version", value: (d) => link(`#/dataset/${d.ref}`, d.ref) }, { title: "rows", value: (d) => d.rows },
        { title: "created", value: (d) => when(d.created_at) },
      ]))),
    card(`First rows (of ${rows.total})`, table(rows.rows, rows.columns.map((c) => ({ title: c, value: (r) => fmt(r[c]) })), { id: "first-rows" })));
}

// ---------------------------------------------------------------- train
function templates(schema, dataset, model) {
  const tasks = schema.properties.task.enum;
  const base = (task, extra) => ({
    name: `${dataset.replace(/[^A-Za-z0-9._-]/g, "-") || "model"}-${task.split("-")[0]}`,
    task, data: { train: dataset || "DATASET", split: { test: 0.2, seed: 1 } }, ...extra,
    train: { epochs: 3, batch_size: 16, lr: 0.0002, seed: 7 },
  });
  const text = { model: { name: model || "minilm" }, method: { type: "lora", r: 8 } };
  const found = {
    "text-classification": base("text-classification", { ...text, inputs: [{ type: "text", name: "text", max_length: 64 }], outputs: [{ type: "category", name: "label" }] }),
    generation: base("generation", { model: { name: model || "smollm2-135m" }, method: { type: "lora", r: 8 }, inputs: [{ type: "chat", name: "messages" }], outputs: [{ type: "text", name: "answer" }] }),
    "token-classification": base("token-classification", { ...text, inputs: [{ type: "tokens", name: "tokens" }], outputs: [{ type: "tags", name: "tags" }] }),
    "image-classification": base("image-classification", { inputs: [{ type: "image", name: "image" }], outputs: [{ type: "category", name: "label" }] }),
    "tabular-classification": base("tabular-classification", { inputs: [{ type: "number", name: "x" }, { type: "category", name: "c" }], outputs: [{ type: "category", name: "label" }] }),
    "tabular-regression": base("tabular-regression", { inputs: [{ type: "number", name: "x" }], outputs: [{ type: "number", name: "y" }] }),
    "multimodal-classification": base("multimodal-classification", { ...text, inputs: [{ type: "text", name: "text" }, { type: "number", name: "x" }], outputs: [{ type: "category", name: "label" }] }),
    "multimodal-regression": base("multimodal-regression", { ...text, inputs: [{ type: "text", name: "text" }, { type: "number", name: "x" }], outputs: [{ type: "number", name: "y" }] }),
  };
  return Object.fromEntries(tasks.map((t) => [t, found[t] || base(t, {})]));
}

async function train(body) {
  const [schema, sets, zoo] = await Promise.all([api.get("/v1/specs/schema"), api.get("/v1/datasets"), api.get("/v1/registry/zoo")]);
  const names = [...new Set(sets.map((d) => d.name))];
  const task = h("select", { id: "template" }, schema.properties.task.enum.map((t) => h("option", { value: t }, t)));
  const data = h("select", { id: "template-data" }, names.map((n) => h("option", { value: n }, n)));
  const editor = h("textarea", { id: "spec", rows: 26, cols: 90, spellcheck: "false" });
  const errors = h("ul", { id: "spec-errors", class: "errors" });
  const status = h("div", { id: "train-status", role: "status" });
  const submit = h("button", { id: "submit-train", type: "button" }, "Submit training");
  const cpus = h("input", { id: "train-cpus", type: "number", min: 1, value: 1, size: 3 });
  function show(problems) {
    clear(errors, problems.map((p) => h("li", { dataset: { path: p.path } }, h("code", {}, p.path || "(spec)"), " ", p.message)));
    submit.disabled = problems.length > 0;
  }
  function parse() {
    try { return { spec: JSON.parse(editor.value) }; } catch (err) { return { problem: { path: "(json)", message: err.message } }; }
  }
  function live() {
    const { spec, problem: bad } = parse();
    show(bad ? [bad] : validate(schema, spec));
  }
  function fill() {
    editor.value = JSON.stringify(templates(schema, data.value || "", "")[task.value], null, 2);
    live();
  }
  editor.addEventListener("input", live);
  task.addEventListener("change", fill);
  data.addEventListener("change", fill);
  // the server's check (every problem with its path) before a submission
  async function serverCheck(spec) {
    try { await api.post("/v1/specs/check", { spec }); return []; } catch (err) {
      if (err.status !== 422) throw err;
      const problems = err.error.problems || [err.message];
      return problems.map((p) => { const cut = p.indexOf(":"); return cut > 0 ? { path: p.slice(0, cut), message: p.slice(cut + 1).trim() } : { path: "", message: p }; });
    }
  }
  submit.addEventListener("click", async () => {
    const { spec, problem: bad } = parse();
    const problems = bad ? [bad] : validate(schema, spec);
    if (problems.length) { show(problems); return; }
    submit.disabled = true;
    clear(status, "checking…");
    try {
      const found = await serverCheck(spec);
      if (found.length) { show(found); clear(status, problem("the server found problems in the spec: fix them at their fields")); return; }
      const job = await api.post("/v1/jobs", { kind: "train", spec, cpus: Number(cpus.value) || 1 });
      clear(status, h("p", { class: "ok" }, `job ${job.id} queued `), link(`#/job/${job.id}`, "follow it"));
      location.hash = `#/job/${job.id}`;
    } catch (err) { clear(status, problem(err.message, "train-error")); } finally { submit.disabled = false; live(); }
  });
  append(body, h("h1", {}, "Train"),
    card("Spec", h("p", {}, "Template ", task, " on ", data, " ", h("span", { class: "muted" }, `zoo: ${zoo.map((z) => z.alias ?? z.name).join(", ")}`)),
      editor, h("h3", {}, "Problems"), errors,
      can("train") ? h("p", {}, "CPUs ", cpus, " ", change("train", submit)) : h("p", { class: "muted" }, "your role may not submit training"),
      status));
  fill();
}

// ---------------------------------------------------------------- jobs
function jobTable(list, empty = "no job yet") {
  return table(list, [
    { title: "job", value: (j) => link(`#/job/${j.id}`, `#${j.id}`) }, { title: "kind", value: (j) => j.kind },
    { title: "name", value: (j) => j.name }, { title: "state", value: (j) => h("span", { class: `state ${j.state}` }, j.state) },
    { title: "progress", value: (j) => progressText(j.progress) }, { title: "attempts", value: (j) => `${j.attempts}/${j.max_attempts}` },
    { title: "created", value: (j) => when(j.created_at) },
  ], { empty, id: "job-list" });
}

// a job's progress: a progress event (phase, step, total) or a job's last report (task, done, total)
const stepOf = (p) => (p ? { phase: p.phase ?? p.task, step: p.step ?? p.done ?? 0, total: p.total, loss: p.loss } : {});
const progressText = (raw) => {
  const p = stepOf(raw);
  if (!p.phase) return "—";
  const loss = typeof p.loss === "number" ? ` loss ${fmt(p.loss)}` : "";
  return p.total ? `${p.phase} ${p.step}/${p.total}${loss}` : `${p.phase}${loss}`;
};

async function jobs(body) {
  append(body, h("h1", {}, "Jobs"), card("Jobs, newest first", jobTable(await api.get("/v1/jobs?limit=100"))));
}

async function jobPage(body, id, signal) {
  let job = await api.get(`/v1/jobs/${id}`);
  const state = h("span", { id: "job-state", class: `state ${job.state}` }, job.state);
  const bar = h("progress", { id: "job-progress", max: 1, value: 0 });
  const step = h("span", { id: "job-step" }, progressText(job.progress));
  const log = h("pre", { id: "job-log", class: "log" });
  const chart = h("div", { id: "loss-chart" });
  const outcome = h("div", { id: "job-outcome" });
  const losses = [];
  const actions = h("p", {});
  function progress(raw) {
    const p = stepOf(raw);
    if (p.total) bar.value = Math.min(1, p.step / p.total);
    step.textContent = progressText(raw);
  }
  // while it runs: one point per progress report (the worker's heartbeat sends the latest
  // snapshot about once a second, so a phase shorter than that may send none)
  function draw() {
    chart.dataset.source = "live";
    clear(chart, lines([{ name: "training loss", points: losses }], { xLabel: "report", label: "training loss" }));
  }
  // once the run is registered: every optimizer step's loss as the store keeps it
  async function stored(ref) {
    const found = await api.get(`/v1/registry/models/${encodeURIComponent(ref)}/metrics?names=loss`);
    const points = found.points.filter((p) => p.name === "loss").map((p) => [p.step, p.value]);
    if (!points.length) return;
    chart.dataset.source = "stored";
    clear(chart, lines([{ name: `training loss (${found.model})`, points }], { xLabel: "step", label: "training loss" }));
  }
  function finished(info) {
    job = info;
    state.textContent = info.state;
    state.className = `state ${info.state}`;
    progress(info.progress);
    clear(outcome,
      info.error ? problem(info.error, "job-error") : null,
      info.result && info.result.model ? h("p", { class: "ok" }, "registered ", link(`#/run/${info.result.model}`, info.result.model)) : null,
      info.result ? h("pre", {}, JSON.stringify(info.result, null, 2)) : null);
    buttons();
    if (info.result && info.result.model) stored(info.result.model).catch((err) => outcome.append(problem(err.message)));
  }
  function buttons() {
    const done = ["succeeded", "failed", "cancelled"].includes(job.state);
    clear(actions,
      !done ? change("jobs:write", h("button", { id: "cancel-job", onclick: async () => { try { finished(await api.post(`/v1/jobs/${id}/cancel`)); } catch (err) { actions.append(problem(err.message)); } } }, "Cancel")) : null,
      done && job.state !== "succeeded" ? change("jobs:write", h("button", { id: "retry-job", onclick: async () => { try { await api.post(`/v1/jobs/${id}/retry`); route(); } catch (err) { actions.append(problem(err.message)); } } }, "Retry")) : null);
  }
  progress(job.progress);
  buttons();
  draw();
  append(body, h("h1", {}, `Job #${job.id}: ${job.kind} ${job.name}`),
    h("p", {}, "State ", state, ` · attempts ${job.attempts}/${job.max_attempts} · priority ${job.priority} · created ${when(job.created_at)}`),
    card("Progress", bar, " ", step, chart), actions, outcome, card("Log", log));
  // follow the event stream (it replays the job's events first, then live ones)
  api.events(`/v1/jobs/${id}/events`, (event) => {
    if (event.type === "state") { state.textContent = event.state; state.className = `state ${event.state}`; }
    else if (event.type === "progress") {
      progress(event);
      // the training loss as the worker reports it, one point per report (evaluation phases aside)
      if (typeof event.loss === "number" && /^epoch/.test(event.phase)) { losses.push([losses.length + 1, event.loss]); draw(); }
    } else if (event.type === "log") { log.append(`${event.line}\n`); log.scrollTop = log.scrollHeight; }
    else if (event.type === "end") { finished(event.info); return false; }
    return true;
  }, signal).catch((err) => { if (err.name !== "AbortError") outcome.append(problem(err.message)); });
}

// ---------------------------------------------------------------- models
const PAGE = 20;
async function models(body, arg) {
  const [filter = "", pageText = "1"] = arg ? arg.split("/") : [];
  // the server pages (limit/offset): one row past the page says whether there is a next one
  const page = Math.max(1, Math.floor(Number(pageText)) || 1);
  const query = new URLSearchParams({ limit: PAGE + 1, offset: (page - 1) * PAGE });
  if (filter) query.set("name", filter);
  const list = await api.get(`/v1/registry/models?${query}`);
  const shown = list.slice(0, PAGE);
  const more = list.length > PAGE;
  const first = (page - 1) * PAGE;
  const picked = new Set();
  const compareButton = h("button", { type: "button", id: "compare", disabled: true, onclick: () => { location.hash = `#/compare/${[...picked].join(",")}`; } }, "Compare selected");
  const name = h("input", { id: "model-filter", placeholder: "model name", value: filter });
  append(body, h("h1", {}, "Models"),
    h("form", { onsubmit: (e) => { e.preventDefault(); location.hash = `#/models/${encodeURIComponent(name.value.trim())}`; } }, "Name ", name, " ", h("button", { type: "submit" }, "Filter"), " ", compareButton),
    card(shown.length ? `Registered versions ${first + 1}–${first + shown.length}` : "Registered versions", table(shown, [
      { title: "", value: (m) => h("input", { type: "checkbox", class: "pick", value: m.ref, "aria-label": `select ${m.ref}`, onchange: (e) => { if (e.target.checked) picked.add(m.ref); else picked.delete(m.ref); compareButton.disabled = picked.size < 2; } }) },
      { title: "model", value: (m) => link(`#/run/${m.ref}`, m.ref) }, { title: "task", value: (m) => m.task },
      { title: "base", value: (m) => m.base_model }, { title: "method", value: (m) => m.method },
      { title: "accuracy", value: (m) => fmt(m.accuracy) }, { title: "macro F1", value: (m) => fmt(m.macro_f1) },
      { title: "created", value: (m) => when(m.created_at) },
    ], { empty: "no model registered yet", id: "model-list" }),
    h("p", { id: "pager" }, page > 1 ? link(`#/models/${encodeURIComponent(filter)}/${page - 1}`, "« previous") : null, ` page ${page} `,
      more ? link(`#/models/${encodeURIComponent(filter)}/${page + 1}`, "next »") : null)));
}

const scalars = (metrics) => Object.entries(metrics || {}).filter(([, v]) => typeof v === "number");

// a JSON file of a model's report (report/metrics.json, report/history.json), or null
async function reportJson(ref, files, path) {
  if (!files.some((f) => f.path === path)) return null;
  return api.get(`/v1/registry/models/${encodeURIComponent(ref)}/files/${path}`);
}

// a run's stored per-step metrics (GET .../metrics) as curves: the losses on one chart, the
// evaluation metrics on another, the learning rate and the throughput on their own
const CURVES = [
  ["loss", "Loss per step", (n) => /loss/.test(n)],
  ["metric", "Evaluation metrics per step", (n) => /^val_/.test(n)],
  ["lr", "Learning rate per step", (n) => n === "lr"],
  ["throughput", "Samples per second", (n) => n === "samples_per_s"],
];
const runMetrics = (ref) => api.get(`/v1/registry/models/${encodeURIComponent(ref)}/metrics`);

function runCurves(runs) {
  const series = Object.fromEntries(CURVES.map(([key]) => [key, []]));
  for (const run of runs) {
    for (const name of run.names) {
      const kind = CURVES.find(([, , test]) => test(name));
      if (!kind) continue;
      const points = run.points.filter((p) => p.name === name).map((p) => [p.step, p.value]);
      series[kind[0]].push({ name: runs.length > 1 ? `${run.model} ${name}` : name, points });
    }
  }
  return h("div", { class: "cards", id: "curves" },
    CURVES.filter(([key]) => key === "loss" || series[key].length).map(([key, title]) =>
      card(title, lines(series[key], { xLabel: "step", label: title.toLowerCase() }))));
}

async function modelPage(body, ref) {
  const enc = encodeURIComponent(ref);
  const [model, lineage, deps, files] = await Promise.all([
    api.get(`/v1/registry/models/${enc}`), api.get(`/v1/registry/models/${enc}/lineage`),
    api.get("/v1/deployments"), api.get(`/v1/registry/models/${enc}/files`),
  ]);
  const [report, steps] = await Promise.all([reportJson(ref, files, "report/metrics.json"), runMetrics(model.ref)]);
  const serving = deps.filter((d) => d.model === model.ref);
  const m = model.metrics || {};
  const perClass = Object.entries((report || m).per_class || {});
  const matrix = (report || m).confusion_matrix;
  const figure = h("div", { id: "confusion" });
  if (matrix && matrix.labels) figure.append(grid(matrix.labels, matrix.matrix));
  else if (files.some((f) => f.path === "report/confusion_matrix.png")) {
    api.blobUrl(`/v1/registry/models/${enc}/files/report/confusion_matrix.png`).then((src) => figure.append(h("img", { src, alt: "confusion matrix" }))).catch(() => {});
  } else figure.append(h("p", { class: "muted" }, "no confusion matrix for this task"));
  append(body, h("h1", {}, `Model ${model.ref}`),
    h("p", {}, `${model.task} · ${model.base_model} · ${model.method} · trained in ${fmt(model.train_seconds, 1)} s`,
      model.job_id ? [" by ", link(`#/job/${model.job_id}`, `job #${model.job_id}`)] : null,
      model.epsilon !== null && model.epsilon !== undefined ? ` · privacy ε = ${fmt(model.epsilon, 3)}` : ""),
    h("div", { class: "cards" },
      card("Metrics", table(scalars(m), [{ title: "metric", value: (r) => r[0] }, { title: "value", value: (r) => fmt(r[1]) }], { id: "metrics" })),
      card("Lineage", h("ol", { id: "lineage", class: "lineage" },
        h("li", {}, "train data ", lineage.train ? link(`#/dataset/${lineage.train}`, lineage.train) : "—"),
        h("li", {}, "test data ", lineage.test ? link(`#/dataset/${lineage.test}`, lineage.test) : "—"),
        h("li", {}, "model ", model.ref, model.lineage && model.lineage.parent ? ` (from ${model.lineage.parent})` : ""),
        h("li", {}, "deployments ", serving.length ? serving.map((d) => d.name).join(", ") : "none"))),
      card("Confusion matrix", figure)),
    runCurves([steps]),
    perClass.length ? card("Per-class report", table(perClass, [
      { title: "label", value: (r) => r[0] }, { title: "precision", value: (r) => fmt(r[1].precision) },
      { title: "recall", value: (r) => fmt(r[1].recall) }, { title: "F1", value: (r) => fmt(r[1].f1) }, { title: "support", value: (r) => r[1].support },
    ], { id: "per-class" })) : null,
    can("deployments:write") ? deployForm(model.ref) : null,
    card("Spec", h("pre", { id: "model-spec" }, JSON.stringify(model.spec, null, 2))),
    card("Files", table(files, [{ title: "path", value: (f) => f.path }, { title: "type", value: (f) => f.media_type }])));
}

function deployForm(model) {
  const modelField = h("input", { id: "deploy-model", value: model || "", placeholder: "NAME[@V] or zoo alias", required: true });
  const name = h("input", { id: "deploy-name", placeholder: "deployment name", required: true });
  const status = h("div", { id: "deploy-status", role: "status" });
  const button = change("deployments:write", h("button", { type: "submit", id: "deploy" }, "Deploy"));
  return h("form", { class: "card", id: "deploy-form", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const d = await api.post("/v1/deployments", { model: modelField.value.trim(), name: name.value.trim() });
      clear(status, h("p", { class: "ok", id: "deployed" }, `${d.name} serves ${d.model} (revision ${d.revision})`));
    } catch (err) { clear(status, problem(err.message, "deploy-error")); }
  } }, h("h2", {}, "Deploy"), modelField, " as ", name, " ", button, status);
}

async function compare(body, arg) {
  const refs = arg.split(",").filter(Boolean);
  const found = await Promise.all(refs.map((r) => api.get(`/v1/registry/models/${encodeURIComponent(r)}`)));
  const steps = await Promise.all(found.map((m) => runMetrics(m.ref)));
  const keys = [...new Set(found.flatMap((m) => scalars(m.metrics).map(([k]) => k)))];
  const rows = [["task", (m) => m.task], ["base model", (m) => m.base_model], ["method", (m) => m.method],
    ["train seconds", (m) => fmt(m.train_seconds, 1)], ...keys.map((k) => [k, (m) => fmt(m.metrics[k])])];
  const charts = ["accuracy", "macro_f1"].filter((k) => keys.includes(k)).map((k) => card(k, bars(found.map((m) => ({ label: m.ref, value: m.metrics[k] ?? 0 })), { max: 1, format: (v) => fmt(v), label: k })));
  append(body, h("h1", {}, `Compare ${refs.join(", ")}`),
    card("Metrics", h("table", { id: "compare-table" },
      h("thead", {}, h("tr", {}, h("th", {}, ""), found.map((m) => h("th", {}, link(`#/run/${m.ref}`, m.ref))))),
      h("tbody", {}, rows.map(([title, value]) => h("tr", {}, h("th", {}, title), found.map((m) => h("td", {}, value(m)))))))),
    h("div", { class: "cards" }, charts), runCurves(steps));
}

// ---------------------------------------------------------------- deployments
async function deployments(body) {
  const list = await api.get("/v1/deployments");
  // each deployment's recent traffic as this server saw it (GET .../traffic), with where its model sits in memory
  const traffic = await Promise.all(list.map((d) => api.get(`/v1/deployments/${encodeURIComponent(d.name)}/traffic?seconds=900`).catch((err) => ({ error: err.message }))));
  const seen = Object.fromEntries(list.map((d, i) => [d.name, traffic[i]]));
  const status = h("div", { id: "deployment-status", role: "status" });
  const act = (fn) => async () => { try { const r = await fn(); clear(status, h("p", { class: "ok" }, r)); } catch (err) { clear(status, problem(err.message)); } };
  append(body, h("h1", {}, "Deployments"), status,
    card("Served names", table(list, [
      { title: "name", value: (d) => d.name }, { title: "model", value: (d) => link(`#/run/${d.model}`, d.model) },
      { title: "kind", value: (d) => d.kind }, { title: "optimize", value: (d) => d.optimize ?? "—" }, { title: "revision", value: (d) => d.revision },
      { title: "resident", value: (d) => resident(seen[d.name]) }, { title: "updated", value: (d) => when(d.updated_at) },
      { title: "", value: (d) => [
        change("adapt", h("button", { class: "rollback", onclick: act(async () => { const r = await api.post(`/v1/deployments/${encodeURIComponent(d.name)}/rollback`, { reason: "console" }); return `${d.name}: ${r.decision} to ${r.model}`; }) }, "Roll back")),
        " ",
        change("deployments:write", h("button", { class: "undeploy", onclick: act(async () => { if (!confirm(`Remove deployment ${d.name}?`)) return "kept"; await api.del(`/v1/deployments/${encodeURIComponent(d.name)}`); route(); return `${d.name} removed`; }) }, "Undeploy")),
      ] },
    ], { empty: "no deployment", id: "deployment-list" })),
    list.map((d) => trafficCard(d.name, seen[d.name])),
    can("deployments:write") ? deployForm("") : null);
}

function resident(t) {
  const m = t?.memory;
  if (!m) return t?.error ? "—" : "not loaded";
  const size = m.bytes < 2 ** 20 ? `${fmt(m.bytes / 2 ** 10, 1)} KB` : `${fmt(m.bytes / 2 ** 20, 1)} MB`;
  return m.as === "adapter" ? `adapter on ${m.base}, ${size}${m.pinned ? ", pinned" : ""}` : `model, ${size}`;
}

// requests/s, latency p50/p99 and batch size per bucket, as the API's buckets hold them
function trafficCard(name, t) {
  if (t.error) return card(`Traffic: ${name}`, problem(t.error));
  const busy = t.buckets.filter((b) => b.requests > 0);
  const pts = (rows, key) => rows.filter((b) => b[key] !== null).map((b) => [b.offset_s, b[key]]);
  const opts = { xLabel: "s (0 = now)", xRange: [-t.seconds, 0], width: 380, height: 200 };
  const chart = (id, series, yLabel) => h("div", { id, class: "traffic-chart" }, lines(series, { ...opts, yLabel, label: `${name} ${yLabel}` }));
  const total = t.buckets.reduce((n, b) => n + b.requests, 0);
  return h("section", { class: "card traffic", "data-deployment": name },
    h("h2", {}, `Traffic: ${name}`),
    h("p", { class: "muted" }, `the last ${t.seconds} s in ${t.bucket_s}-second buckets, as this server answered them (per replica)`),
    h("div", { class: "cards" },
      chart(`traffic-rate-${name}`, [{ name: "requests/s", points: pts(t.buckets, "rate_per_s") }], "requests/s"),
      chart(`traffic-latency-${name}`, [{ name: "p50", points: pts(busy, "p50_ms") }, { name: "p99", points: pts(busy, "p99_ms") }], "latency ms"),
      chart(`traffic-batch-${name}`, [{ name: "mean", points: pts(busy, "mean_batch") }, { name: "max", points: pts(busy, "max_batch") }], "batch inputs")),
    total ? null : h("p", { class: "muted" }, "no request in this window"));
}

// ---------------------------------------------------------------- playground
const isChat = (d) => /causal|generat|llm|chat/i.test(d.kind);

async function playground(body) {
  const list = await api.get("/v1/deployments");
  append(body, h("h1", {}, "Playground"));
  if (!can("predict")) { body.append(h("p", { class: "muted" }, "your role may not call deployments")); return; }
  if (!list.length) { body.append(h("p", { class: "muted" }, "no deployment: deploy a model first")); return; }
  const pick = h("select", { id: "play-deployment" }, list.map((d) => h("option", { value: d.name }, `${d.name} (${d.kind})`)));
  const area = h("div", {});
  const draw = () => {
    const d = list.find((x) => x.name === pick.value);
    clear(area, isChat(d) ? chatBox(d) : classifyBox(d));
  };
  pick.addEventListener("change", draw);
  append(body, h("p", {}, "Deployment ", pick), area);
  draw();
}

function classifyBox(d) {
  const text = h("input", { id: "play-text", size: 60, placeholder: "a text to classify" });
  const out = h("div", { id: "play-result" });
  const button = change("predict", h("button", { type: "submit", id: "predict" }, "Predict"));
  return h("form", { class: "card", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const r = await api.post(`/v1/deployments/${encodeURIComponent(d.name)}/predict`, { inputs: text.value });
      const row = r.predictions[0];
      const probs = row.probabilities || row.scores || {};
      const items = Object.entries(probs).map(([label, value]) => ({ label, value })).sort((a, b) => b.value - a.value);
      clear(out, h("p", { id: "play-label" }, "label ", h("strong", {}, String(row.label ?? "")), ` · model ${r.model} · request ${r.request_id}`),
        items.length ? bars(items, { max: 1, format: (v) => v.toFixed(3), label: "probabilities" }) : h("pre", {}, JSON.stringify(row, null, 2)));
    } catch (err) { clear(out, problem(err.message, "play-error")); }
  } }, text, " ", button, out);
}

function chatBox(d) {
  const messages = [];
  const log = h("div", { id: "chat-log", class: "chat" });
  const text = h("textarea", { id: "chat-text", rows: 3, cols: 70 });
  const button = change("predict", h("button", { type: "submit", id: "chat-send" }, "Send"));
  return h("form", { class: "card", onsubmit: async (e) => {
    e.preventDefault();
    messages.push({ role: "user", content: text.value });
    log.append(h("p", { class: "user" }, text.value));
    text.value = "";
    const answer = h("p", { class: "assistant" });
    log.append(answer);
    let content = "";
    try {
      await api.streamPost("/v1/chat/completions", { model: d.name, messages, stream: true }, (chunk) => {
        const delta = chunk.choices?.[0]?.delta?.content;
        if (delta) { content += delta; answer.textContent = content; }
      });
      messages.push({ role: "assistant", content });
    } catch (err) { answer.replaceWith(problem(err.message)); }
  } }, log, text, " ", button);
}

// ---------------------------------------------------------------- monitoring
async function monitoring(body, arg) {
  const [list, alerts] = await Promise.all([api.get("/v1/deployments"), api.get("/v1/alerts?limit=50")]);
  append(body, h("h1", {}, "Monitoring"));
  const pick = h("select", { id: "monitor-deployment", onchange: () => { location.hash = `#/monitoring/${encodeURIComponent(pick.value)}`; } },
    h("option", { value: "" }, "choose a deployment"), list.map((d) => h("option", { value: d.name, selected: d.name === arg }, d.name)));
  body.append(h("p", {}, "Deployment ", pick));
  if (arg) {
    const out = h("div", { id: "monitor" });
    body.append(out);
    const enc = encodeURIComponent(arg);
    try {
      const [report, history] = await Promise.all([api.get(`/v1/deployments/${enc}/monitor`), api.get(`/v1/deployments/${enc}/adapt/history`)]);
      const chart = h("div", {});
      if (report.windows.length) api.blobUrl(`/v1/deployments/${enc}/monitor/chart`).then((src) => chart.append(h("img", { src, alt: "drift chart" }))).catch(() => {});
      const cols = report.windows.length ? Object.keys(report.windows[0]).filter((k) => typeof report.windows[0][k] !== "object") : [];
      append(out, h("p", { id: "drifted", class: report.drifted ? "error" : "ok" }, report.drifted ? "drift detected" : "no drift detected"),
        report.note ? h("p", { class: "muted" }, report.note) : null,
        card("Windows", table(report.windows, cols.map((c) => ({ title: c, value: (w) => fmt(w[c]) })), { empty: "no traffic yet" }), chart),
        card("Adaptation decisions", table(history, [
          { title: "when", value: (x) => when(x.at) }, { title: "decision", value: (x) => x.decision }, { title: "model", value: (x) => x.model },
          { title: "reasons", value: (x) => x.reasons.join("; ") },
        ], { empty: "no decision yet" })));
    } catch (err) { out.append(problem(err.message)); }
  }
  body.append(card("Alerts", alertTable(arg ? alerts.filter((a) => a.deployment === arg) : alerts)));
}

// ---------------------------------------------------------------- audit
async function audit(body) {
  const events = await api.get("/v1/audit?limit=500");
  const actor = h("input", { id: "audit-actor", placeholder: "actor" });
  const action = h("input", { id: "audit-action", placeholder: "action" });
  const text = h("input", { id: "audit-text", placeholder: "target contains" });
  const holder = h("div", {});
  const verdict = h("div", { id: "audit-verdict", role: "status" });
  const draw = () => {
    const shown = events.filter((e) => (!actor.value || e.actor.includes(actor.value)) && (!action.value || e.action.includes(action.value)) && (!text.value || e.target.includes(text.value)));
    clear(holder, table(shown, [
      { title: "id", value: (e) => e.id }, { title: "when", value: (e) => when(e.at) }, { title: "actor", value: (e) => e.actor },
      { title: "action", value: (e) => e.action }, { title: "target", value: (e) => e.target }, { title: "outcome", value: (e) => e.outcome },
    ], { empty: "no event matches", id: "audit-list" }));
  };
  [actor, action, text].forEach((f) => f.addEventListener("input", draw));
  const verify = h("button", { id: "audit-verify", onclick: async () => {
    try { const v = await api.get("/v1/audit/verify"); clear(verdict, h("p", { class: v.ok ? "ok" : "error" }, v.message)); } catch (err) { clear(verdict, problem(err.message)); }
  } }, "Verify the chain");
  append(body, h("h1", {}, "Audit"), h("p", {}, actor, " ", action, " ", text, " ", verify), verdict, card("Events, newest first", holder));
  draw();
}

// ---------------------------------------------------------------- admin
async function admin(body) {
  const [users, tokens, keys] = await Promise.all([api.get("/v1/users"), api.get("/v1/tokens"), api.get("/v1/keys")]);
  const status = h("div", { id: "admin-status", role: "status" });
  const act = (fn) => async (e) => { e?.preventDefault?.(); try { await fn(); } catch (err) { clear(status, problem(err.message, "admin-error")); } };
  const userName = h("input", { id: "user-name", placeholder: "user name", required: true });
  const userRole = h("select", { id: "user-role" }, ["developer", "viewer", "admin", "app"].map((r) => h("option", { value: r }, r)));
  const tokenUser = h("input", { id: "token-user", placeholder: "user", required: true });
  const tokenExpires = h("input", { id: "token-expires", placeholder: "expires (30d, 12h)", size: 12 });
  append(body, h("h1", {}, "Admin"), status,
    card("Users", table(users, [
      { title: "name", value: (u) => u.name }, { title: "role", value: (u) => u.role }, { title: "tokens", value: (u) => u.active_tokens },
      { title: "created", value: (u) => when(u.created_at) },
      { title: "", value: (u) => change("users:admin", h("button", { onclick: act(async () => { if (!confirm(`Remove ${u.name} and revoke their tokens?`)) return; await api.del(`/v1/users/${encodeURIComponent(u.name)}`); route(); }) }, "Remove")) },
    ], { id: "user-list" }),
    h("form", { id: "add-user", onsubmit: act(async () => { await api.post("/v1/users", { name: userName.value.trim(), role: userRole.value }); route(); }) },
      userName, " ", userRole, " ", change("users:admin", h("button", { type: "submit" }, "Add user")))),
    card("Tokens", table(tokens, [
      { title: "id", value: (t) => t.id }, { title: "prefix", value: (t) => t.prefix }, { title: "user", value: (t) => t.user },
      { title: "role", value: (t) => t.role }, { title: "state", value: (t) => t.state }, { title: "expires", value: (t) => when(t.expires_at) },
      { title: "last used", value: (t) => when(t.last_used_at) },
      { title: "", value: (t) => (t.state === "active" ? change("users:admin", h("button", { onclick: act(async () => { await api.del(`/v1/tokens/${t.id}`); route(); }) }, "Revoke")) : null) },
    ], { id: "token-list" }),
    h("form", { id: "create-token", onsubmit: act(async () => {
      const made = await api.post("/v1/tokens", { user: tokenUser.value.trim(), expires: tokenExpires.value.trim() || null });
      clear(status, h("div", { class: "card once" }, h("p", {}, `Token for ${made.user} (${made.role}); copy it now, it is not shown again:`), h("code", { id: "new-token" }, made.token)));
    }) }, tokenUser, " ", tokenExpires, " ", change("users:admin", h("button", { type: "submit" }, "Create token")))),
    card("Encryption keys", h("p", { id: "key-status" }, keys.encrypted ? `encrypted (${keys.algorithm}), master key ${keys.key_id} from ${keys.key_source}; ${keys.data_keys} data keys, ${keys.blobs_plaintext} of ${keys.blobs} blobs plaintext` : "not encrypted (llmos keys enable)"),
      keys.encrypted ? change("keys:admin", h("button", { id: "rotate-key", onclick: act(async () => { if (!confirm("Rotate the master key?")) return; const r = await api.post("/v1/keys/rotate"); clear(status, h("p", { class: "ok" }, JSON.stringify(r))); }) }, "Rotate the master key")) : null));
}

// ---------------------------------------------------------------- start
(async () => {
  if (api.token()) {
    const failed = await start();
    if (failed) { api.forget(); signIn(`Signed out: ${failed}`); }
  } else signIn();
})();
