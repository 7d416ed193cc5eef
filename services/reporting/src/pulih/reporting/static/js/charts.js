// Hand-written SVG charts. Each function takes the pixel width of its card and returns an <svg>
// drawn at that size (text stays 12px on a phone and on a laptop); main.js redraws on resize.
// Every mark carries a <title> with its value, so a tap or a hover tells the exact figure.

import { el, svg } from "./dom.js";

const FONT = 12;

/** A round upper bound for an axis and its tick step (1, 2 or 5 × 10^k, about four ticks). */
function scale(max) {
  if (max <= 0) return { top: 4, step: 1 };
  const raw = max / 4;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const whole = Math.max(1, Math.round(step));
  return { top: Math.ceil(max / whole) * whole, step: whole };
}

function frame(width, height, label) {
  return svg("svg", {
    class: "chart",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": label,
  }, svg("title", { text: label }));
}

/** A legend under a chart: coloured swatches with their labels. */
export function legend(items) {
  // an SVG swatch, not a styled span: the page's CSP allows no inline style attribute
  return el("ul", { class: "legend" }, items.map((item) => el("li", {},
    svg("svg", { class: "swatch", width: 12, height: 12, viewBox: "0 0 12 12", "aria-hidden": "true" },
      svg("rect", { width: 12, height: 12, rx: 2, fill: item.color })),
    item.label)));
}

/**
 * Vertical bars per category (months): series side by side, stacked, or overlaid (the later series
 * drawn narrower inside the earlier, e.g. attended inside held). above(i) may label a column.
 */
export function columns({ width, height = 210, label, categories, series, mode = "grouped", format, above }) {
  const chart = frame(width, height, label);
  const left = 38, right = 6, top = above ? 22 : 10, bottom = 26;
  const plotW = width - left - right, plotH = height - top - bottom;
  const totals = categories.map((_, i) => (mode === "stacked"
    ? series.reduce((sum, s) => sum + s.values[i], 0)
    : Math.max(0, ...series.map((s) => s.values[i]))));
  const { top: max, step } = scale(Math.max(0, ...totals));
  const y = (v) => top + plotH - (v / max) * plotH;
  for (let tick = 0; tick <= max; tick += step) {
    chart.append(
      svg("line", { class: "gridline", x1: left, x2: width - right, y1: y(tick), y2: y(tick) }),
      svg("text", { class: "tick", x: left - 6, y: y(tick) + 4, "text-anchor": "end", text: format(tick) }),
    );
  }
  const band = plotW / categories.length;
  const labelEvery = Math.ceil(44 / band);
  categories.forEach((category, i) => {
    const x0 = left + i * band;
    const barW = Math.max(2, band * 0.72);
    const start = x0 + (band - barW) / 2;
    let stackedTo = 0;
    series.forEach((s, k) => {
      const value = s.values[i];
      let x = start, w = barW, from = 0;
      if (mode === "grouped") {
        w = barW / series.length;
        x = start + k * w;
      } else if (mode === "overlay") {
        w = barW * (1 - 0.45 * k);
        x = start + (barW - w) / 2;
      } else {
        from = stackedTo;
        stackedTo += value;
      }
      chart.append(svg("rect", {
        class: "bar", x, width: Math.max(1, w - (mode === "grouped" ? 1 : 0)),
        y: y(from + value), height: Math.max(0, y(from) - y(from + value)), fill: s.color,
      }, svg("title", { text: `${s.label} · ${category.long}: ${format(value)}` })));
    });
    if (above) {
      const text = above(i);
      if (text) chart.append(svg("text", { class: "above", x: x0 + band / 2, y: y(totals[i]) - 6, "text-anchor": "middle", text }));
    }
    if (i % labelEvery === (categories.length - 1) % labelEvery) {
      chart.append(svg("text", { class: "tick", x: x0 + band / 2, y: height - 8, "text-anchor": "middle", text: category.short }));
    }
  });
  chart.append(svg("line", { class: "axis", x1: left, x2: width - right, y1: y(0), y2: y(0) }));
  return chart;
}

function sparkline(values, x, y, w, h, color) {
  const max = Math.max(1, ...values);
  const points = values.map((v, i) => `${x + (values.length > 1 ? (i / (values.length - 1)) * w : w / 2)},${y + h - (v / max) * h}`);
  const last = points[points.length - 1].split(",");
  return svg("g", { class: "spark" },
    svg("polyline", { points: points.join(" "), fill: "none", stroke: color, "stroke-width": 1.5 }),
    svg("circle", { cx: last[0], cy: last[1], r: 2.5, fill: color }));
}

/** A funnel: one bar per step (as long as its value) with the share kept from the step before
 * after its value, and a sparkline of the step over the months on the right. */
export function funnel({ width, label, steps, format, share }) {
  const rowH = 46, sparkW = Math.min(96, width * 0.24);
  const chart = frame(width, steps.length * rowH + 4, label);
  const barsW = width - sparkW - 16;
  const max = Math.max(1, ...steps.map((s) => s.value));
  steps.forEach((step, i) => {
    const y0 = i * rowH + 2;
    const w = Math.max(2, (step.value / max) * (barsW - 90));
    const value = svg("text", { class: "value", x: w + 6, y: y0 + 33 }, format(step.value));
    if (i > 0) value.append(svg("tspan", { class: "share", dx: 6, text: share(steps[i - 1].value, step.value) }));
    chart.append(
      svg("text", { class: "step", x: 0, y: y0 + FONT, text: step.label }),
      svg("rect", { class: "bar", x: 0, y: y0 + 18, width: w, height: 20, rx: 3, fill: step.color },
        svg("title", { text: `${step.label}: ${format(step.value)}` })),
      value,
      sparkline(step.trend, width - sparkW, y0 + 14, sparkW, 26, step.color),
    );
  });
  return chart;
}

/** Horizontal bars, one per item (label on the left, value after the bar). An item with
 * emphasis is drawn bold (e.g. overdue). */
export function bars({ width, label, items, format }) {
  const rowH = 26, labelW = Math.min(150, width * 0.42);
  const chart = frame(width, items.length * rowH + 4, label);
  const max = Math.max(1, ...items.map((item) => item.value));
  items.forEach((item, i) => {
    const y0 = i * rowH + 2;
    const w = item.value ? Math.max(2, (item.value / max) * (width - labelW - 48)) : 0;
    chart.append(
      svg("text", { class: item.emphasis ? "label strong" : "label", x: labelW - 8, y: y0 + 16, "text-anchor": "end", text: item.label }),
      svg("rect", { class: "bar", x: labelW, y: y0 + 4, width: w, height: 17, rx: 2, fill: item.color },
        svg("title", { text: `${item.label}: ${format(item.value)}` })),
      svg("text", { class: item.emphasis ? "value strong" : "value", x: labelW + w + 6, y: y0 + 17, text: format(item.value) }),
    );
  });
  return chart;
}

/** A dumbbell per row: the mean at the start (hollow) and at the end (filled) on a 0–100 scale,
 * joined by a line, with the change on the right. */
export function dumbbells({ width, label, rows, format, startLabel, endLabel, colors }) {
  const rowH = 34, labelW = Math.min(110, width * 0.3), changeW = 46;
  const chart = frame(width, rows.length * rowH + 26, label);
  const x = (v) => labelW + (v / 100) * (width - labelW - changeW - 8);
  for (const tick of [0, 25, 50, 75, 100]) {
    chart.append(
      svg("line", { class: "gridline", x1: x(tick), x2: x(tick), y1: 0, y2: rows.length * rowH }),
      svg("text", { class: "tick", x: x(tick), y: rows.length * rowH + 16, "text-anchor": "middle", text: String(tick) }),
    );
  }
  rows.forEach((row, i) => {
    const cy = i * rowH + rowH / 2;
    const change = row.end - row.start;
    chart.append(
      svg("text", { class: "label", x: labelW - 10, y: cy + 4, "text-anchor": "end", text: row.label }),
      svg("line", { class: "link", x1: x(row.start), x2: x(row.end), y1: cy, y2: cy, stroke: colors.end }),
      svg("circle", { class: "start", cx: x(row.start), cy, r: 5, stroke: colors.start },
        svg("title", { text: `${row.label} · ${startLabel}: ${format(row.start)}` })),
      svg("circle", { class: "end", cx: x(row.end), cy, r: 5, fill: colors.end },
        svg("title", { text: `${row.label} · ${endLabel}: ${format(row.end)}` })),
      svg("text", {
        class: change >= 0 ? "value up" : "value down", x: width, y: cy + 4, "text-anchor": "end",
        text: `${change >= 0 ? "+" : "−"}${format(Math.abs(change))}`,
      }),
    );
  });
  return chart;
}

/**
 * Lines over categories (months), one per series, with a point for every value (a null leaves a
 * gap). A series may carry notes: a point with a note is drawn hollow and its title says it
 * (e.g. a total over hidden cells, "≥ 40 (2 hidden)").
 */
export function lines({ width, height = 210, label, categories, series, format }) {
  const chart = frame(width, height, label);
  const left = 38, right = 10, top = 12, bottom = 26;
  const plotW = width - left - right, plotH = height - top - bottom;
  const all = series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined));
  const { top: max, step } = scale(Math.max(0, ...all));
  const y = (v) => top + plotH - (v / max) * plotH;
  const band = plotW / Math.max(1, categories.length);
  const x = (i) => left + band * i + band / 2;
  for (let tick = 0; tick <= max; tick += step) {
    chart.append(
      svg("line", { class: "gridline", x1: left, x2: width - right, y1: y(tick), y2: y(tick) }),
      svg("text", { class: "tick", x: left - 6, y: y(tick) + 4, "text-anchor": "end", text: format(tick) }),
    );
  }
  const labelEvery = Math.ceil(44 / band);
  categories.forEach((category, i) => {
    if (i % labelEvery === (categories.length - 1) % labelEvery) {
      chart.append(svg("text", { class: "tick", x: x(i), y: height - 8, "text-anchor": "middle", text: category.short }));
    }
  });
  chart.append(svg("line", { class: "axis", x1: left, x2: width - right, y1: y(0), y2: y(0) }));
  for (const s of series) {
    const runs = [[]];
    s.values.forEach((value, i) => {
      if (value === null || value === undefined) runs.push([]);
      else runs.at(-1).push(`${x(i)},${y(value)}`);
    });
    for (const run of runs.filter((r) => r.length > 1)) {
      chart.append(svg("polyline", { class: "line", points: run.join(" "), stroke: s.color }));
    }
    s.values.forEach((value, i) => {
      if (value === null || value === undefined) return;
      const note = s.notes ? s.notes[i] : null;
      chart.append(svg("circle", {
        class: note ? "point inexact" : "point", cx: x(i), cy: y(value), r: note ? 4 : 3.5,
        fill: s.color, stroke: s.color, "data-period": category(categories[i]),
      }, svg("title", { text: `${s.label} · ${categories[i].long}: ${note || format(value)}` })));
    });
  }
  return chart;
}

function category(c) {
  return c.key ?? c.short;
}
