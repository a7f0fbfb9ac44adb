// Small hand-written SVG charts (horizontal bars, lines, a heat-map grid): the console
// needs three shapes, not a charting library. Every number drawn comes from an API answer.
const NS = "http://www.w3.org/2000/svg";
const COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563"];

function el(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

// [{label, value}] as horizontal bars; `format` writes the value beside each bar
export function bars(items, { max, format = (v) => String(v), width = 520, label = "chart" } = {}) {
  const row = 22;
  const left = 190;
  const top = Math.max(1e-12, max ?? Math.max(0, ...items.map((i) => i.value)));
  const svg = el("svg", { width, height: row * items.length + 4, role: "img", "aria-label": label, class: "chart bars" });
  items.forEach((item, i) => {
    const y = i * row + 2;
    const w = Math.max(1, ((width - left - 70) * item.value) / top);
    svg.append(el("text", { x: left - 6, y: y + 15, "text-anchor": "end", class: "axis" }, item.label));
    const bar = el("rect", { x: left, y: y + 3, width: w, height: row - 6, fill: COLOURS[0], "data-label": item.label, "data-value": item.value });
    bar.append(el("title", {}, `${item.label}: ${format(item.value)}`));
    svg.append(bar);
    svg.append(el("text", { x: left + w + 6, y: y + 15, class: "value" }, format(item.value)));
  });
  return svg;
}

// [{name, points: [[x, y], ...]}] as overlaid lines with axes and a legend
// (`xRange`: a fixed [from, to] for the x axis, so that charts of one time window line up)
export function lines(series, { width = 560, height = 240, xLabel = "step", yLabel = "", label = "curves", xRange } = {}) {
  const pad = { l: 52, r: 12, t: 12, b: 34 };
  const all = series.flatMap((s) => s.points);
  const svg = el("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label, class: "chart lines" });
  if (!all.length) {
    svg.append(el("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "axis" }, "no points yet"));
    return svg;
  }
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  let [x0, x1] = xRange ?? [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) x1 = x0 + 1;
  if (y0 === y1) { y0 -= 0.5; y1 += 0.5; }
  const X = (x) => pad.l + ((x - x0) / (x1 - x0)) * (width - pad.l - pad.r);
  const Y = (y) => height - pad.b - ((y - y0) / (y1 - y0)) * (height - pad.t - pad.b);
  svg.append(el("line", { x1: pad.l, y1: height - pad.b, x2: width - pad.r, y2: height - pad.b, class: "axis-line" }));
  svg.append(el("line", { x1: pad.l, y1: pad.t, x2: pad.l, y2: height - pad.b, class: "axis-line" }));
  for (const v of [y0, (y0 + y1) / 2, y1]) {
    svg.append(el("text", { x: pad.l - 4, y: Y(v) + 4, "text-anchor": "end", class: "axis" }, v.toPrecision(4)));
  }
  svg.append(el("text", { x: pad.l, y: height - 8, class: "axis" }, String(x0)));
  svg.append(el("text", { x: width - pad.r, y: height - 8, "text-anchor": "end", class: "axis" }, `${x1} ${xLabel}`));
  if (yLabel) svg.append(el("text", { x: pad.l + 4, y: pad.t + 10, class: "axis" }, yLabel));
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const d = s.points.map((p, j) => `${j ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" ");
    svg.append(el("path", { d, fill: "none", stroke: colour, "stroke-width": 2, "data-series": s.name, "data-points": s.points.length, "data-xy": JSON.stringify(s.points) }));
    // a dot per point where they are few, so that a lone point (one busy bucket) shows too
    if (s.points.length <= 120) for (const p of s.points) svg.append(el("circle", { cx: X(p[0]).toFixed(1), cy: Y(p[1]).toFixed(1), r: 2.5, fill: colour }));
    svg.append(el("text", { x: width - pad.r - 4, y: pad.t + 12 + 14 * i, "text-anchor": "end", fill: colour, class: "legend" }, s.name));
  });
  return svg;
}

// a confusion matrix: rows are the true labels, columns the predicted ones
export function grid(labels, matrix, { cell = 26, label = "confusion matrix" } = {}) {
  const left = 170;
  const top = 120;
  const n = labels.length;
  const peak = Math.max(1, ...matrix.flat());
  const svg = el("svg", { width: left + n * cell + 10, height: top + n * cell + 10, role: "img", "aria-label": label, class: "chart grid" });
  labels.forEach((name, i) => {
    svg.append(el("text", { x: left - 6, y: top + i * cell + cell / 2 + 4, "text-anchor": "end", class: "axis" }, name));
    const x = left + i * cell + cell / 2;
    svg.append(el("text", { x, y: top - 6, transform: `rotate(-55 ${x} ${top - 6})`, class: "axis" }, name));
  });
  matrix.forEach((row, i) => row.forEach((count, j) => {
    const shade = count / peak;
    const rect = el("rect", {
      x: left + j * cell, y: top + i * cell, width: cell - 1, height: cell - 1,
      fill: i === j ? `rgba(22,163,74,${0.1 + 0.9 * shade})` : `rgba(220,38,38,${count ? 0.15 + 0.85 * shade : 0.04})`,
      "data-count": count,
    });
    rect.append(el("title", {}, `true ${labels[i]}, predicted ${labels[j]}: ${count}`));
    svg.append(rect);
    if (count) svg.append(el("text", { x: left + j * cell + cell / 2, y: top + i * cell + cell / 2 + 4, "text-anchor": "middle", class: "cell" }, count));
  }));
  return svg;
}
