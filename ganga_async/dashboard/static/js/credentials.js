// The credentials page: each credential's time left as a bar (against its lifetime, with the
// minimum a submission needs marked), and the jobs held for it with their reasons.
import { boot, el, fmtDuration, getJSON, listen, throttle } from "./common.js";

let fetchedAt = 0;
let credentials = [];

function timeBar(c, left) {
  const span = c.lifetime || Math.max(left, c.min_time_left || 0, 1);
  const bar = el("div", { class: "timebar", role: "img" });
  const fill = el("div", { class: "fill" });
  fill.style.width = `${Math.max(0, Math.min(100, (100 * left) / span))}%`;
  bar.append(fill);
  if (c.min_time_left) {
    const mark = el("div", { class: "min", title: `minimum: ${fmtDuration(c.min_time_left)}` });
    mark.style.left = `${Math.min(100, (100 * c.min_time_left) / span)}%`;
    bar.append(mark);
  }
  const short = !c.valid || (c.min_time_left && left < c.min_time_left);
  bar.classList.toggle("short", Boolean(short));
  const words = c.lifetime ? `${fmtDuration(left)} left of ${fmtDuration(c.lifetime)}` : `${fmtDuration(left)} left`;
  bar.setAttribute("aria-label", short ? `${words}, short` : words);
  return el("div", {}, bar, el("div", { class: "muted time-left" }, short ? `${words} (short)` : words));
}

function render() {
  const elapsed = (Date.now() - fetchedAt) / 1000;
  const body = document.querySelector("#credentials tbody");
  body.replaceChildren(...credentials.map((c) => {
    const left = c.time_left === null || c.time_left === undefined ? null : Math.max(0, c.time_left - elapsed);
    return el("tr", { dataset: { credential: c.name } },
      el("td", {}, c.name),
      el("td", {}, c.type || ""),
      el("td", { class: "mono" }, c.identity || ""),
      el("td", {}, c.valid ? "yes" : el("span", { class: "error" }, "no")),
      el("td", {}, left === null ? el("span", { class: "muted" }, "unknown") : timeBar(c, left)),
      el("td", {}, (c.held_jobs || []).length
        ? el("ul", {}, ...c.held_jobs.map((h) => el("li", {},
          el("a", { href: `/job/${String(h.id).split(".")[0]}` }, `job ${h.id}`), `: ${h.reason || "held"}`)))
        : el("span", { class: "muted" }, "none")));
  }));
  document.getElementById("empty").hidden = credentials.length > 0;
}

async function load() {
  ({ credentials } = await getJSON("/api/credentials"));
  fetchedAt = Date.now();
  render();
}

boot(async () => {
  await load();
  const reload = throttle(() => load().catch(() => {}), 1000);
  listen({ credential: reload, job: reload }, { onreconnect: reload });
  setInterval(render, 1000);
  setInterval(reload, 30000);
});
