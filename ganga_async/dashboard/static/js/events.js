// The events page: the daemon's recent events, then the live stream. Events arriving faster than
// the screen refreshes are queued and added once per animation frame, and only the newest
// MAX_ROWS stay in the table, so a burst never blocks the page.
import { boot, el, fmtTime, getJSON, listen, statusBadge } from "./common.js";

const MAX_ROWS = 500;
const FEW = 20;
const body = document.querySelector("#events tbody");
const rate = document.getElementById("rate");
const queue = [];
const counters = { received: 0, dropped: 0 };
let paused = false;
let scheduled = false;
let filter = "";

function summary(e) {
  switch (e.type) {
    case "status":
      return el("span", {}, statusBadge(e.old), " → ", statusBadge(e.new), e.reason ? ` ${e.reason}` : "");
    case "postprocessed":
      return el("span", {}, `${e.postprocessor} `, statusBadge(e.ok ? "completed" : "failed"),
        e.detail ? ` ${e.detail}` : "");
    case "retrying":
      return `attempt ${e.attempt} in ${Math.round(e.delay)}s${e.reason ? `: ${e.reason}` : ""}`;
    case "credential":
      return `${e.kind}: ${e.message ?? ""}`;
    default: {
      const rest = Object.entries(e).filter(([k]) => !["time", "type", "seq", "fqid", "job_id", "index"].includes(k));
      return rest.map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ");
    }
  }
}

function row(e, fresh) {
  const fqid = e.fqid ?? e.job_id;
  const master = fqid === undefined || fqid === null ? null : String(fqid).split(".")[0];
  const tr = el("tr", { class: fresh ? "fresh" : null, dataset: { type: e.type ?? "" } },
    el("td", { class: "mono" }, fmtTime(e.time)),
    el("td", {}, e.type ?? ""),
    el("td", {}, master === null ? (e.credential ?? "") : el("a", { href: `/job/${master}` }, fqid)),
    el("td", {}, summary(e)));
  if (filter) tr.hidden = !tr.textContent.toLowerCase().includes(filter);
  return tr;
}

function flush() {
  scheduled = false;
  if (paused || !queue.length) return;
  const batch = queue.splice(0, queue.length).slice(-MAX_ROWS);
  const fragment = document.createDocumentFragment();
  const highlight = batch.length <= FEW; // a flood is not highlighted row by row
  for (let i = batch.length - 1; i >= 0; i -= 1) fragment.append(row(batch[i], highlight));
  body.prepend(fragment);
  while (body.rows.length > MAX_ROWS) body.lastElementChild.remove();
  showCounters();
}

function showCounters() {
  rate.dataset.received = counters.received;
  rate.dataset.dropped = counters.dropped;
  const skipped = counters.dropped ? `, ${counters.dropped} skipped by the server's rate limit` : "";
  rate.textContent = `${counters.received} live events${skipped}${paused ? ` (paused, ${queue.length} waiting)` : ""}`;
}

function push(e) {
  counters.received += 1;
  queue.push(e);
  if (queue.length > 4 * MAX_ROWS) queue.splice(0, queue.length - MAX_ROWS);
  if (!scheduled) { scheduled = true; requestAnimationFrame(flush); }
}

function onDropped(data) {
  counters.dropped += Number(data.skipped ?? 0);
  showCounters();
}

boot(async () => {
  const form = document.getElementById("filters");
  form.addEventListener("submit", (e) => e.preventDefault());
  form.elements.q.addEventListener("input", () => {
    filter = form.elements.q.value.trim().toLowerCase();
    for (const tr of body.rows) tr.hidden = Boolean(filter) && !tr.textContent.toLowerCase().includes(filter);
  });
  const pause = document.getElementById("pause");
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
    if (!paused && !scheduled) { scheduled = true; requestAnimationFrame(flush); }
    showCounters();
  });
  const recent = await getJSON("/api/events/recent?limit=200");
  const { events } = recent;
  body.replaceChildren(...events.slice().reverse().map((e) => row(e, false)));
  showCounters();
  listen({ event: push, dropped: onDropped });
});
