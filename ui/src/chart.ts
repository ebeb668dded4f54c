// Small trend charts drawn as inline SVG by our own code (no chart library): one line per
// measure over study days, a dot per daily log, IABP insertions and removals as dashed marks.
// The values come from Rust (App::trends); nothing is computed here but the drawing.
import type { TrendMark, TrendPoint, Trends } from "./bindings";
import { h } from "./dom";
import { t, tn, type Word } from "./i18n";

const NS = "http://www.w3.org/2000/svg";

function svg(
  tag: string,
  attrs: Record<string, string | number>,
  ...children: (SVGElement | string)[]
): SVGElement {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(typeof c === "string" ? document.createTextNode(c) : c);
  return el;
}

type Measure = "lactate" | "map" | "pulse_pressure" | "flow" | "vis";

const MEASURES: [Measure, Word][] = [
  ["lactate", "lactate"],
  ["map", "mapChart"],
  ["pulse_pressure", "pulsePressure"],
  ["flow", "flowChart"],
  ["vis", "visChart"],
];

const W = 220;
const H = 110;
const PAD = { l: 30, r: 8, t: 8, b: 18 };

function nice(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(0) : String(Math.round(v * 10) / 10);
}

/** One chart; `data-points` tells how many values it drew (the desktop test reads it). */
function chart(
  measure: Measure,
  label: string,
  points: TrendPoint[],
  marks: TrendMark[],
): HTMLElement {
  const pts = points
    .filter((p) => p[measure] !== null)
    .map((p) => [p.day, p[measure] as number] as const);
  const days = [...points.map((p) => p.day), ...marks.map((m) => m.day)];
  const x0 = Math.min(0, ...days);
  const x1 = Math.max(x0 + 1, ...days);
  const ys = pts.map((p) => p[1]);
  let y0 = ys.length ? Math.min(...ys) : 0;
  let y1 = ys.length ? Math.max(...ys) : 1;
  if (y1 - y0 < 1e-9) {
    y0 -= 1;
    y1 += 1;
  }
  const sx = (d: number) => PAD.l + ((d - x0) / (x1 - x0)) * (W - PAD.l - PAD.r);
  const sy = (v: number) => H - PAD.b - ((v - y0) / (y1 - y0)) * (H - PAD.t - PAD.b);
  const parts: SVGElement[] = [
    svg("line", { class: "axis", x1: PAD.l, y1: H - PAD.b, x2: W - PAD.r, y2: H - PAD.b }),
    svg("line", { class: "axis", x1: PAD.l, y1: PAD.t, x2: PAD.l, y2: H - PAD.b }),
    svg("text", { x: 2, y: PAD.t + 8 }, nice(y1)),
    svg("text", { x: 2, y: H - PAD.b }, nice(y0)),
    svg("text", { x: PAD.l, y: H - 4 }, tn("day", x0)),
    svg("text", { x: W - PAD.r - 34, y: H - 4 }, tn("day", Math.ceil(x1))),
  ];
  for (const m of marks) {
    const x = sx(m.day);
    parts.push(
      svg(
        "line",
        {
          class: m.kind === "iabp_in" ? "mark-in" : "mark-out",
          "data-mark": m.kind,
          x1: x,
          y1: PAD.t,
          x2: x,
          y2: H - PAD.b,
        },
        svg(
          "title",
          {},
          `${t(m.kind === "iabp_in" ? "iabpIn" : "iabpOut")} · ${tn("day", m.day.toFixed(2))}`,
        ),
      ),
    );
  }
  if (pts.length > 1) {
    parts.push(
      svg("polyline", {
        class: "line",
        points: pts.map(([d, v]) => `${sx(d)},${sy(v)}`).join(" "),
      }),
    );
  }
  for (const [d, v] of pts) {
    parts.push(
      svg(
        "circle",
        { class: "pt", cx: sx(d), cy: sy(v), r: 3 },
        svg("title", {}, `${tn("day", d)}: ${v}`),
      ),
    );
  }
  const figure = h("figure", { "data-chart": measure, "data-points": pts.length });
  figure.append(
    svg(
      "svg",
      { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label },
      ...parts,
    ),
  );
  figure.append(h("figcaption", {}, label));
  return figure;
}

/** The five trend charts, or a line saying there is nothing to draw yet. */
export function trendCharts(trends: Trends): HTMLElement {
  const box = h("section", { class: "trends", id: "trends" });
  if (!trends.points.length) {
    box.append(h("p", {}, t("noTrend")));
    return box;
  }
  for (const [m, w] of MEASURES) box.append(chart(m, t(w), trends.points, trends.marks));
  return box;
}
