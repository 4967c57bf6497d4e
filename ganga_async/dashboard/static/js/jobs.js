// The jobs page: one row per master, as condor_q's batch view, kept live by the stream.
import {
  FINAL, boot, countsView, el, fmtDuration, fmtTime, getJSON, listen, statusBadge, throttle,
} from "./common.js";

const form = document.getElementById("filters");
const body = document.querySelector("#jobs tbody");
const rows = new Map(); // job id -> {job, tr}

function filters() {
  const data = new FormData(form);
  const query = new URLSearchParams();
  for (const key of ["status", "name", "backend"]) {
    const value = String(data.get(key) || "").trim();
    if (value) query.set(key, value);
  }
  return query;
}

function elapsed(job) {
  if (job.started && !FINAL.has(job.status)) return Date.now() / 1000 - job.started;
  return job.elapsed;
}

function render(job) {
  const tr = el("tr", { dataset: { jobId: job.id, status: job.status } },
    el("td", { class: "num" }, el("a", { href: `/job/${job.id}` }, job.id)),
    el("td", {}, el("a", { href: `/job/${job.id}` }, job.name || ""),
      job.comment ? el("div", { class: "muted" }, job.comment) : null),
    el("td", {}, job.application || ""),
    el("td", {}, job.backend || ""),
    el("td", { class: "job-status" }, statusBadge(job.status)),
    el("td", { class: "num" }, job.subjobs || ""),
    el("td", { class: "job-counts" }, countsView(job.counts || {})),
    el("td", {}, fmtTime(job.started)),
    el("td", { class: "num job-elapsed" }, fmtDuration(elapsed(job))));
  const old = rows.get(job.id);
  if (old) old.tr.replaceWith(tr);
  rows.set(job.id, { job, tr });
  return tr;
}

async function load() {
  const query = filters();
  history.replaceState(null, "", query.size ? `/?${query}` : "/");
  const { jobs } = await getJSON(`/api/jobs?${query}`);
  rows.clear();
  body.replaceChildren(...jobs.map(render));
  document.getElementById("empty").hidden = jobs.length > 0;
  const backends = [...new Set(jobs.map((j) => j.backend).filter(Boolean))].sort();
  document.getElementById("backends").replaceChildren(...backends.map((b) => el("option", { value: b })));
  summarise();
}

function summarise() {
  let active = 0;
  for (const { job } of rows.values()) if (!FINAL.has(job.status)) active += 1;
  document.getElementById("summary").textContent = `${rows.size} jobs, ${active} active`;
}

const reload = throttle(() => load().catch(() => {}), 1000);

function onJob(news) {
  const row = rows.get(news.id);
  if (!row) { reload(); return; } // a new job, or one that now passes the filters
  const wanted = filters().get("status");
  if (wanted && news.status !== wanted) { reload(); return; }
  render({ ...row.job, status: news.status, counts: news.counts ?? row.job.counts,
    started: news.started ?? row.job.started, elapsed: news.elapsed ?? row.job.elapsed });
  summarise();
}

boot(async () => {
  const params = new URLSearchParams(location.search);
  for (const key of ["status", "name", "backend"]) {
    if (params.has(key)) form.elements[key].value = params.get(key);
  }
  form.addEventListener("input", throttle(() => load().catch(() => {}), 300));
  form.addEventListener("submit", (event) => event.preventDefault());
  await load();
  listen({ job: onJob }, { onreconnect: reload });
  setInterval(() => {
    for (const { job, tr } of rows.values()) {
      if (job.started && !FINAL.has(job.status)) {
        tr.querySelector(".job-elapsed").textContent = fmtDuration(elapsed(job));
      }
    }
  }, 1000);
});
