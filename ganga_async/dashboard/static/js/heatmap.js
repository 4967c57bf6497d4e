// The status heat-map: one square per subjob on a <canvas>, drawn as one ImageData (a 32-bit
// write per pixel), so 10^5 cells draw in a few milliseconds where DOM nodes would take seconds.
import { statusColour } from "./common.js";

const MAX_HEIGHT = 420; // CSS pixels the map may take before the cells shrink
const MAX_CELL = 14;

function rgba(colour) {
  const probe = document.createElement("canvas").getContext("2d");
  probe.fillStyle = colour;
  const hex = probe.fillStyle; // normalised to #rrggbb
  const v = parseInt(hex.slice(1), 16);
  // ImageData is RGBA bytes; read as little-endian uint32 that is ABGR
  return (255 << 24) | ((v & 0xff) << 16) | (v & 0xff00) | ((v >> 16) & 0xff);
}

export class Heatmap {
  /**
   * `canvas` is drawn on; `onpick(index)` is called when a cell is clicked; `tooltip` is an
   * element shown on hover with the subjob's index and status.
   */
  constructor(canvas, { onpick, tooltip } = {}) {
    this.canvas = canvas;
    this.onpick = onpick;
    this.tooltip = tooltip;
    this.codes = "";
    this.legend = [];
    this.cell = 1;
    this.columns = 1;
    canvas.addEventListener("click", (e) => {
      const i = this.indexAt(e);
      if (i !== null && this.onpick) this.onpick(i);
    });
    canvas.addEventListener("mousemove", (e) => this.hover(e));
    canvas.addEventListener("mouseleave", () => { if (this.tooltip) this.tooltip.hidden = true; });
  }

  /** Draw `{legend, codes, n}` as /api/jobs/{id}/cells gives it; returns the counts per status. */
  draw({ legend, codes, n }) {
    this.codes = codes;
    this.legend = legend;
    const width = Math.max(100, Math.floor(this.canvas.parentElement.clientWidth || 800));
    let cell = Math.floor(Math.sqrt((width * MAX_HEIGHT) / Math.max(1, n)));
    cell = Math.max(1, Math.min(MAX_CELL, cell));
    const gap = cell >= 6 ? 1 : 0;
    const columns = Math.max(1, Math.floor(width / cell));
    const rows = Math.max(1, Math.ceil(n / columns));
    this.cell = cell;
    this.columns = columns;
    const w = columns * cell;
    const h = rows * cell;
    this.canvas.width = w;
    this.canvas.height = h;
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${h}px`;
    const context = this.canvas.getContext("2d");
    const image = context.createImageData(w, h);
    const pixels = new Uint32Array(image.data.buffer);
    const palette = legend.map((status) => rgba(statusColour(status)));
    const counts = new Array(legend.length).fill(0);
    const background = rgba("#ffffff");
    pixels.fill(background);
    for (let i = 0; i < n; i += 1) {
      const code = codes.charCodeAt(i) - 48;
      counts[code] += 1;
      const colour = palette[code] ?? palette[0];
      const x0 = (i % columns) * cell;
      const y0 = Math.floor(i / columns) * cell;
      const size = cell - gap;
      for (let y = 0; y < size; y += 1) {
        const start = (y0 + y) * w + x0;
        pixels.fill(colour, start, start + size);
      }
    }
    context.putImageData(image, 0, 0);
    const byStatus = {};
    legend.forEach((status, k) => { if (counts[k]) byStatus[status] = counts[k]; });
    const said = Object.entries(byStatus).map(([s, c]) => `${c} ${s}`).join(", ");
    this.canvas.setAttribute("aria-label", `status of ${n} subjobs: ${said}`);
    return byStatus;
  }

  indexAt(event) {
    const box = this.canvas.getBoundingClientRect();
    const x = Math.floor((event.clientX - box.left) / this.cell);
    const y = Math.floor((event.clientY - box.top) / this.cell);
    if (x < 0 || x >= this.columns || y < 0) return null;
    const i = y * this.columns + x;
    return i < this.codes.length ? i : null;
  }

  hover(event) {
    if (!this.tooltip) return;
    const i = this.indexAt(event);
    if (i === null) { this.tooltip.hidden = true; return; }
    const status = this.legend[this.codes.charCodeAt(i) - 48] ?? "?";
    this.tooltip.textContent = `subjob ${i}: ${status}`;
    this.tooltip.hidden = false;
    const box = this.canvas.parentElement.getBoundingClientRect();
    this.tooltip.style.left = `${event.clientX - box.left + 12}px`;
    this.tooltip.style.top = `${event.clientY - box.top + 12}px`;
  }
}
