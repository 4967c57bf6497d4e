// The job page: description, counts, timeline, heat-map, failure reasons, attempts,
// postprocessor results, the subjob table and a subjob's output, all kept live by the stream.
// Performance marks (`job:first-render`, `job:heatmap`) let benchmarks time the page from inside.
import { wireActions } from "./actions.js";
import {
  ApiError, banner, boot, countsView, el, fmtDuration, fmtTime, getJSON, listen, statusBadge,
  throttle,
} from "./common.js";
import { Heatmap } from "./heatmap.js";
import { Timeline } from "./timeline.js";

const jobId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
const PAGE = 100;
const DESCRIBED = ["name", "comment", "application", "backend", "splitter", "postprocessors",
  "inputfiles", "outputfiles", "backend_id", "exitcode", "reason", "elapsed", "times"];

const state = { job: null, offset: 0, total: 0, subjobs: 0, selected: null };
const heatmap = new Heatmap(document.getElementById("heatmap"), {
  onpick: (index) => showOutput(index),
  tooltip: document.getElementById("tooltip"),
});
const timeline = new Timeline(document.getElementById("timeline"));

function describe(value) {
  if (value === null || value === undefined || value === "") return el("span", { class: "muted" }, "none");
  if (Array.isArray(value)) {
    if (!value.length) return el("span", { class: "muted" }, "none");
    return el("div", {}, ...value.map((v) => el("div", {}, describe(v))));
  }
  if (typeof value === "object") {
    const entries = Object.entries(value);
    if (!entries.length) return el("span", { class: "muted" }, "none");
    return el("div", { class: "mono" }, ...entries.map(([k, v]) => el("div", {},
      `${k}: `, typeof v === "object" && v !== null ? brief(v) : String(v))));
  }
  return String(value);
}

/** JSON of a value, long lists cut (a splitter's 100,000 argument lists are not a description). */
function brief(value) {
  if (Array.isArray(value) && value.length > 6) {
    const head = value.slice(0, 3).map((v) => JSON.stringify(v)).join(", ");
    // the server may have cut the list already, ending it with "... (N in all)"
    const last = value[value.length - 1];
    const said = typeof last === "string" && /^\.\.\. \(\d+ in all\)$/.test(last);
    return `[${head}, ${said ? last : `... (${value.length} in all)`}]`;
  }
  const text = JSON.stringify(value);
  return text.length > 400 ? `${text.slice(0, 400)}…` : text;
}

function renderTimes(times) {
  if (!times || typeof times !== "object") return describe(times);
  return el("div", {}, ...Object.entries(times).map(([name, t]) =>
    el("div", {}, `${name}: `, typeof t === "number" ? fmtTime(t) : String(t))));
}

function renderJob(job) {
  state.job = job;
  state.subjobs = job.subjobs ?? Object.values(job.counts || {}).reduce((a, b) => a + b, 0);
  document.title = `Job ${job.id ?? jobId} · ganga-async`;
  document.getElementById("title").textContent = `Job ${job.id ?? jobId}${job.name ? `: ${job.name}` : ""}`;
  document.getElementById("status").replaceChildren(statusBadge(job.status));
  document.getElementById("counts").replaceChildren(countsView(job.counts || {}));
  const dl = document.getElementById("description");
  dl.replaceChildren();
  for (const key of DESCRIBED) {
    if (!(key in job) || (job[key] === null && ["backend_id", "exitcode", "reason", "comment"].includes(key))) continue;
    dl.append(el("dt", {}, key), el("dd", { dataset: { field: key } },
      key === "times" ? renderTimes(job[key])
        : key === "elapsed" ? fmtDuration(job[key]) : describe(job[key])));
  }
  renderReasons(job.reasons || []);
  renderAttempts(job.attempts);
  renderPostprocessing(job.postprocessing);
}

function renderReasons(reasons) {
  const body = document.querySelector("#reasons tbody");
  body.replaceChildren(...reasons.map((r) => el("tr", {},
    el("td", { class: "reason" }, r.reason || "(no reason given)"),
    el("td", { class: "num" }, r.count),
    el("td", {}, r.example ? el("a", { href: "#output", onclick: () => showOutput(indexOf(r.example), "stderr") },
      r.example) : ""))));
  document.getElementById("no-reasons").hidden = reasons.length > 0;
}

function renderAttempts(attempts) {
  const node = document.getElementById("attempts");
  if (!attempts || typeof attempts !== "object") { node.replaceChildren(describe(attempts)); return; }
  const parts = [];
  if ("total" in attempts) parts.push(`${attempts.total} submissions in all`);
  if ("max" in attempts) parts.push(`the most of one ${state.subjobs ? "subjob" : "job"}: ${attempts.max}`);
  node.replaceChildren(parts.length ? parts.join(", ") : describe(attempts));
}

function renderPostprocessing(perJob) {
  // [{fqid, results: [{postprocessor, ok, detail, time}]}], the master's first
  const rows = (perJob || []).flatMap((entry) => entry.results.map((r) => ({ fqid: entry.fqid, ...r })));
  const node = document.getElementById("postprocessing");
  if (!rows.length) {
    node.replaceChildren(el("p", { class: "muted" }, "No postprocessor has run."));
    return;
  }
  node.replaceChildren(el("table", { id: "postprocessors" },
    el("thead", {}, el("tr", {}, el("th", {}, "on"), el("th", {}, "postprocessor"), el("th", {}, "result"),
      el("th", {}, "detail"), el("th", {}, "ended"))),
    el("tbody", {}, ...rows.slice(0, 200).map((r) => el("tr", {},
      el("td", {}, r.fqid), el("td", {}, r.postprocessor),
      el("td", {}, statusBadge(r.ok ? "completed" : "failed")),
      el("td", { class: "reason" }, r.detail || ""), el("td", {}, fmtTime(r.time)))))));
  if (rows.length > 200) node.append(el("p", { class: "muted" }, `the first 200 of ${rows.length} results`));
}

function indexOf(fqid) {
  const parts = String(fqid).split(".");
  return parts.length > 1 ? Number(parts[parts.length - 1]) : null;
}

async function loadJob() {
  renderJob(await getJSON(`/api/jobs/${jobId}`));
}

async function loadCells() {
  const cells = await getJSON(`/api/jobs/${jobId}/cells`);
  const started = performance.now();
  const counts = heatmap.draw(cells);
  const ms = performance.now() - started;
  if (!performance.getEntriesByName("job:heatmap").length) {
    performance.mark("job:heatmap", { detail: { drawMs: ms, n: cells.n } });
  }
  document.getElementById("heatmap-note").textContent = `${cells.n} subjobs, drawn in ${ms.toFixed(1)} ms`;
  document.getElementById("legend").replaceChildren(...cells.legend.filter((s) => counts[s]).map((s) => {
    const badge = statusBadge(s);
    badge.append(el("b", { dataset: { cells: s } }, counts[s]));
    return badge;
  }));
}

async function loadTimeline() {
  timeline.draw(await getJSON(`/api/jobs/${jobId}/timeline?buckets=200`));
}

async function loadSubjobs() {
  const data = new FormData(document.getElementById("subjob-filters"));
  const query = new URLSearchParams({ offset: state.offset, limit: PAGE });
  if (data.get("status")) query.set("status", data.get("status"));
  if (String(data.get("q") || "").trim()) query.set("q", String(data.get("q")).trim());
  const { total, rows } = await getJSON(`/api/jobs/${jobId}/subjobs?${query}`);
  state.total = total;
  document.querySelector("#subjobs tbody").replaceChildren(...rows.map((r) => el("tr", {
    class: `clickable${r.index === state.selected ? " selected" : ""}`,
    dataset: { index: r.index, status: r.status },
    onclick: () => showOutput(r.index),
  },
  el("td", { class: "num" }, r.index), el("td", {}, r.fqid), el("td", {}, statusBadge(r.status)),
  el("td", { class: "mono" }, r.backend_id ?? ""), el("td", { class: "reason" }, r.reason ?? ""),
  el("td", { class: "num" }, r.attempts ?? ""), el("td", {}, fmtTime(r.started)),
  el("td", {}, fmtTime(r.ended), r.started && r.ended
    ? el("span", { class: "muted" }, ` (${fmtDuration(r.ended - r.started)})`) : null))));
  const last = Math.min(total, state.offset + rows.length);
  document.getElementById("page").textContent = total
    ? `${state.offset + 1}–${last} of ${total}` : "no subjob matches";
  document.getElementById("prev").disabled = state.offset === 0;
  document.getElementById("next").disabled = last >= total;
}

async function showOutput(index, file) {
  const form = document.getElementById("output-form");
  if (index !== undefined) form.elements.index.value = index ?? "";
  if (file) form.elements.file.value = file;
  const raw = form.elements.index.value;
  state.selected = raw === "" ? null : Number(raw);
  const fqid = state.selected === null || !state.subjobs ? jobId : `${jobId}.${state.selected}`;
  const name = form.elements.file.value;
  document.getElementById("output-fqid").textContent = `${fqid} (${name})`;
  const tail = document.getElementById("tail");
  const note = document.getElementById("output-note");
  for (const tr of document.querySelectorAll("#subjobs tbody tr")) {
    tr.classList.toggle("selected", Number(tr.dataset.index) === state.selected);
  }
  try {
    const answer = await getJSON(`/api/jobs/${fqid}/files/${encodeURIComponent(name)}?limit=65536`);
    tail.textContent = answer.text || "";
    note.textContent = answer.truncated ? "showing the last 64 KiB" : (answer.text ? "" : "(empty)");
  } catch (error) {
    tail.textContent = "";
    note.textContent = error instanceof ApiError ? error.message : String(error);
  }
}

function onJob(news) {
  if (String(news.id) !== String(jobId)) return;
  if (state.job) {
    state.job.status = news.status;
    if (news.counts) state.job.counts = news.counts;
    document.getElementById("status").replaceChildren(statusBadge(news.status));
    document.getElementById("counts").replaceChildren(countsView(state.job.counts || {}));
  }
  refreshCells();
  refreshSlow();
}

const quiet = (promise) => promise.catch((error) => {
  if (error instanceof ApiError && error.status === 404) banner(`job ${jobId}: ${error.message}`);
});
const refreshCells = throttle(() => quiet(loadCells()), 1000);
const refreshSlow = throttle(() => {
  quiet(loadJob());
  quiet(loadTimeline());
  quiet(loadSubjobs());
  if (state.selected !== null || !state.subjobs) quiet(showOutput());
}, 2000);

boot(async () => {
  const filters = document.getElementById("subjob-filters");
  filters.addEventListener("input", throttle(() => { state.offset = 0; quiet(loadSubjobs()); }, 300));
  filters.addEventListener("submit", (e) => e.preventDefault());
  document.getElementById("prev").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - PAGE);
    quiet(loadSubjobs());
  });
  document.getElementById("next").addEventListener("click", () => {
    state.offset += PAGE;
    quiet(loadSubjobs());
  });
  document.getElementById("output-form").addEventListener("submit", (e) => {
    e.preventDefault();
    showOutput();
  });
  wireActions(jobId, { onDone: (action) => {
    if (action === "remove") setTimeout(() => { location.href = "/"; }, 1500);
    else refreshSlow();
  } });
  const cells = quiet(loadCells());
  await loadJob();
  performance.mark("job:first-render");
  await cells;
  await Promise.all([loadTimeline(), loadSubjobs()]);
  if (!state.subjobs) await showOutput();
  listen({ job: onJob }, { onreconnect: () => { refreshCells(); refreshSlow(); } });
});
