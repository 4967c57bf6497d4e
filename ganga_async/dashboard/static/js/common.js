// What every page shares: the statuses and their colours, the JSON API (cookie auth, the CSRF
// header on POST), the live stream, and small formatting and DOM helpers.

// Ganga's statuses in the order the engine stores them; the heat-map's legend comes from the
// server, this order is only for display.
export const STATUSES = ["new", "submitting", "submitted", "running", "completing", "completed",
  "failed", "killed", "unknown", "removed", "held"];
export const FINAL = new Set(["completed", "failed", "killed", "removed", "unknown"]);

const styles = getComputedStyle(document.documentElement);
const colours = new Map();
export function statusColour(status) {
  let colour = colours.get(status);
  if (colour === undefined) {
    colour = styles.getPropertyValue(`--st-${status}`).trim() || "#999999";
    colours.set(status, colour);
  }
  return colour;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function failure(response) {
  let text = (await response.text()).trim();
  try {
    const body = JSON.parse(text);
    text = body.error || body.message || text;
  } catch { /* a one-line text body */ }
  return new ApiError(response.status, text.split("\n")[0] || `HTTP ${response.status}`);
}

/** GET a JSON document of the API. */
export async function getJSON(path) {
  const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) throw await failure(response);
  return response.json();
}

let session = null;
/** The session document (`csrf`, `user`, `gangadir`, `version`), fetched once. */
export function getSession() {
  session ??= getJSON("/api/session");
  return session;
}

/** POST a state-changing call with the CSRF header; resolves to the server's JSON answer. */
export async function post(path) {
  const { csrf } = await getSession();
  const response = await fetch(path, {
    method: "POST", credentials: "same-origin",
    headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
  });
  if (!response.ok) throw await failure(response);
  return response.json();
}

/**
 * Listen to /api/stream. `handlers` maps an SSE event name (job, event, dropped, credential) to
 * a function of its parsed data. The header's live marker says whether the stream is open;
 * EventSource reconnects by itself. `onreconnect` runs at every opening, the first included: a
 * page fetches what it shows before the stream opens, so news of that moment would otherwise be
 * missed for good (a job page loaded as its job started showed "submitted" until the next change).
 */
export function listen(handlers, { onreconnect } = {}) {
  const marker = document.querySelector(".live");
  const source = new EventSource("/api/stream");
  source.onopen = () => {
    if (marker) { marker.dataset.state = "live"; marker.textContent = "live"; }
    if (onreconnect) onreconnect();
  };
  source.onerror = () => {
    if (marker) { marker.dataset.state = "down"; marker.textContent = "reconnecting"; }
  };
  for (const [name, handler] of Object.entries(handlers)) {
    source.addEventListener(name, (message) => {
      let data;
      try { data = JSON.parse(message.data); } catch { return; }
      handler(data);
    });
  }
  return source;
}

/** Run `fn` at most once per `ms`, the last call always landing (for refetches on live news). */
export function throttle(fn, ms) {
  let timer = null;
  let pending = false;
  let last = 0;
  const fire = () => {
    timer = null;
    pending = false;
    last = performance.now();
    fn();
  };
  return () => {
    if (timer !== null) { pending = true; return; }
    const wait = Math.max(0, last + ms - performance.now());
    timer = setTimeout(fire, wait);
  };
}

/** `el("td", {class: "num"}, "12")`: an element with attributes and children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** A status as a coloured square with its name (colour is never the only cue). */
export function statusBadge(status) {
  const node = el("span", { class: "status", dataset: { status } }, status);
  node.style.setProperty("--c", statusColour(status));
  return node;
}

/** The counts per status as a stacked bar plus the same numbers in words. */
export function countsView(counts) {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const bar = el("div", { class: "bar", role: "img" });
  const words = el("div", { class: "words" });
  const said = [];
  for (const status of orderedStatuses(counts)) {
    const n = counts[status];
    if (!n) continue;
    const part = el("span", { title: `${n} ${status}` });
    part.style.setProperty("--c", statusColour(status));
    part.style.width = `${(100 * n) / total}%`;
    bar.append(part);
    words.append(el("span", {}, el("b", { dataset: { count: status } }, n), ` ${status}`));
    said.push(`${n} ${status}`);
  }
  bar.setAttribute("aria-label", said.join(", ") || "no subjobs");
  return el("div", { class: "counts" }, bar, words);
}

export function orderedStatuses(counts) {
  const known = STATUSES.filter((s) => s in counts);
  return known.concat(Object.keys(counts).filter((s) => !STATUSES.includes(s)));
}

export function fmtTime(epoch) {
  if (epoch === null || epoch === undefined) return "";
  const d = new Date(epoch * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  const today = new Date();
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (d.toDateString() === today.toDateString()) return time;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** Show an error (or a message) in the page's banner. */
export function banner(text, { ok = false } = {}) {
  const node = document.getElementById("banner");
  if (!node) return;
  node.hidden = !text;
  node.textContent = text || "";
  node.classList.toggle("ok", ok);
}

/** Run a page's start function, turning an API error into the banner. */
export async function boot(start) {
  try {
    await start();
  } catch (error) {
    banner(error instanceof ApiError ? `${error.message} (HTTP ${error.status})` : String(error));
    throw error;
  }
}
