// The job page's timeline: subjobs started and ended per time bucket, and how many ran, drawn by
// the vendored uPlot (a global from vendor/uPlot.iife.min.js).
import { statusColour } from "./common.js";

export class Timeline {
  constructor(container) {
    this.container = container;
    this.plot = null;
  }

  /** Draw `{t0, t1, edges, started, ended, running}` as /api/jobs/{id}/timeline gives it. */
  draw(data) {
    const n = data.started.length;
    if (!n) {
      this.plot?.destroy();
      this.plot = null;
      this.container.replaceChildren("No subjob has started yet.");
      return;
    }
    // a bucket is plotted at its start; edges may hold the closing edge too
    const x = data.edges.slice(0, n);
    const series = [x, data.started, data.ended, data.running];
    if (this.plot && this.plot.data[0].length === n) {
      this.plot.setData(series);
      return;
    }
    this.plot?.destroy();
    this.container.replaceChildren();
    const width = Math.max(300, this.container.clientWidth || 600);
    const step = window.uPlot.paths.stepped({ align: 1 });
    this.plot = new window.uPlot({
      width,
      height: 220,
      scales: { x: { time: true } },
      axes: [{}, { label: "subjobs" }],
      series: [
        { label: "time" },
        { label: "started", stroke: statusColour("running"), width: 2, paths: step },
        { label: "ended", stroke: statusColour("completed"), width: 2, paths: step },
        { label: "running", stroke: statusColour("submitted"), width: 2, dash: [6, 3], paths: step },
      ],
    }, series, this.container);
  }
}
