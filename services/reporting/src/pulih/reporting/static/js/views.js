// The dashboard's cards: each takes the figures main.js loaded and the card's width, and draws
// its title, note, chart and any table. Nothing here talks to the API.

import { bars, columns, dumbbells, funnel, legend } from "./charts.js";
import { el, replace } from "./dom.js";
import { day, month, number, percent, t } from "./i18n.js";

export const COLORS = {
  funnel: ["#0e7490", "#0f766e", "#15803d", "#4d7c0f"],
  risk: { low: "#16a34a", moderate: "#f59e0b", high: "#dc2626" },
  held: "#99d5cf",
  attended: "#0f766e",
  status: {
    referred: "#64748b", accepted: "#2563eb", attended: "#7c3aed", completed: "#16a34a",
    dropped_out: "#f59e0b", declined: "#dc2626", cancelled: "#a8a29e",
  },
  phases: { rintisan: "#d9f99d", tumbuh: "#86efac", berkembang: "#34d399", tangguh: "#0d9488", prima: "#115e59" },
  qol: { start: "#94a3b8", end: "#0f766e" },
};

const PHASES = Object.keys(COLORS.phases);
const PHASE_NAMES = { rintisan: "Rintisan", tumbuh: "Tumbuh", berkembang: "Berkembang", tangguh: "Tangguh", prima: "Prima" };
const TREND_MARK = { up: "▲", down: "▼", steady: "■" };

function head(titleKey, note) {
  return el("header", { class: "card-head" }, el("h2", { text: t(titleKey) }), note ? el("p", { class: "note", text: note }) : null);
}

function empty() {
  return el("p", { class: "empty", text: t("no_data") });
}

function categories(months) {
  return months.map((period) => ({ short: month(period), long: month(period, true) }));
}

/** The headline tiles: this month's figures and today's overdue referrals. */
export function renderKpis(node, data) {
  const last = data.months.length - 1;
  const tiles = [
    ["kpi_reached", data.series.outreach_people_reached[last]],
    ["kpi_screened", data.series.clients_screened[last]],
    ["kpi_enrolled", data.series.clients_enrolled[last]],
    ["kpi_active", data.series.clients_active[last]],
    ["kpi_sessions", data.series.sessions_held[last]],
    ["kpi_overdue", data.referrals.overdue.length, data.referrals.overdue.length > 0],
  ];
  replace(node,
    el("p", { class: "kpi-period", text: t("this_month", { month: month(data.months[last], true) }) }),
    el("div", { class: "kpi-tiles" }, tiles.map(([key, value, alarm]) =>
      el("div", { class: alarm ? "kpi alarm" : "kpi", "data-kpi": key },
        el("span", { class: "kpi-value", text: number(value) }), el("span", { class: "kpi-label", text: t(key) })))));
}

/** Reached → screened → enrolled → completed in the chosen month, with each step's trend. */
export function renderFunnel(card, data, width, chosen, onChoose) {
  const index = Math.max(0, data.months.indexOf(chosen));
  const keys = ["outreach_people_reached", "clients_screened", "clients_enrolled", "programmes_completed"];
  const labels = ["step_reached", "step_screened", "step_enrolled", "step_completed"];
  const picker = el("select", { class: "month-pick", "aria-label": t("month"), on: { change: (e) => onChoose(e.target.value) } },
    data.months.map((period) => el("option", { value: period, selected: period === data.months[index], text: month(period, true) })));
  replace(card, head("funnel_title", t("funnel_note", { month: month(data.months[index], true) })),
    el("div", { class: "card-tools" }, picker),
    funnel({
      width, label: t("funnel_title"), format: number,
      share: (before, after) => `(${percent(after, before)})`,
      steps: keys.map((key, i) => ({
        label: t(labels[i]), value: data.series[key][index], color: COLORS.funnel[i], trend: data.series[key],
      })),
    }));
}

/** Screened clients by overall risk, stacked per month. */
export function renderRisk(card, data, width) {
  const series = ["low", "moderate", "high"].map((risk) => ({
    label: t(`risk_${risk}`), color: COLORS.risk[risk], values: data.series[`screened_${risk}`],
  }));
  replace(card, head("risk_title", t("risk_note")),
    columns({ width, label: t("risk_title"), categories: categories(data.months), series, mode: "stacked", format: number }),
    legend(series));
}

/** Sessions held with the attended ones inside, and the attendance rate above each month. */
export function renderSessions(card, data, width) {
  const held = data.series.sessions_held, attended = data.series.sessions_attended;
  const series = [
    { label: t("sessions_held"), color: COLORS.held, values: held },
    { label: t("sessions_attended"), color: COLORS.attended, values: attended },
  ];
  const narrow = width / data.months.length < 34;
  const sum = (values) => values.reduce((a, b) => a + b, 0);
  replace(card, head("sessions_title", t(narrow ? "sessions_note" : "sessions_note_wide")),
    el("p", { class: "headline", text: t("attendance", { pct: percent(sum(attended), sum(held)) }) }),
    columns({
      width, label: t("sessions_title"), categories: categories(data.months), series, mode: "overlay", format: number,
      above: (i) => (held[i] && !narrow ? percent(attended[i], held[i]) : null),
    }),
    legend(series));
}

function overdueTable(overdue) {
  if (!overdue.length) return el("p", { class: "ok", text: t("overdue_none") });
  return el("div", { class: "table-wrap" }, el("table", { class: "overdue" },
    el("thead", {}, el("tr", {}, ["col_unit", "col_clinic", "col_respond_by", "col_late"].map((key) => el("th", { text: t(key) })))),
    el("tbody", {}, overdue.map((r) => el("tr", {},
      el("td", { class: "name", text: r.unit_name || r.unit_id }),
      el("td", { text: r.clinic_id }),
      el("td", { class: "nowrap", text: day(r.respond_by) }),
      el("td", { class: "late" }, t("overdue_days", { days: r.days_overdue }),
        r.escalated ? el("span", { class: "badge", text: t("escalated") }) : null))))));
}

/** Referrals made in the range by status, answer and completion times, and the overdue list. */
export function renderReferrals(card, data, width) {
  const summary = data.referrals;
  const items = Object.entries(summary.by_status).map(([status, value]) => ({
    label: t(`status_${status}`), value, color: COLORS.status[status],
  }));
  const overdue = summary.overdue.length;
  items.push({ label: t("kpi_overdue"), value: overdue, color: "#b91c1c", emphasis: overdue > 0 });
  const facts = [
    ["median_accept", summary.median_days_to_accept === null ? "–" : number(summary.median_days_to_accept)],
    ["median_close", summary.median_days_to_close === null ? "–" : number(summary.median_days_to_close)],
    ["in_time", percent(summary.answered_in_time, summary.answered)],
  ];
  replace(card,
    head("referrals_title", t("referrals_note", { from: day(summary.since), to: day(summary.until) })),
    bars({ width, label: t("referrals_title"), items, format: number }),
    el("dl", { class: "facts" }, facts.map(([key, value]) => el("div", {}, el("dt", { text: t(key) }), el("dd", { text: value })))),
    el("h3", { class: overdue ? "alarm" : "", text: `${t("overdue_title")} (${number(overdue)})` }),
    overdueTable(summary.overdue));
}

function phaseBadge(phase) {
  return phase ? el("span", { class: `phase phase-${phase}`, text: PHASE_NAMES[phase] }) : el("span", { class: "muted", text: t("not_assessed") });
}

/** Units in each phase month by month, and each unit's phase, since when, and its last move. */
export function renderPhases(card, data, width, unit) {
  const counts = data.phases.by_month.filter((row) => data.months.includes(row.period));
  const series = PHASES.map((phase) => ({
    label: PHASE_NAMES[phase], color: COLORS.phases[phase], values: counts.map((row) => row.units[phase] || 0),
  }));
  const units = data.phases.units.filter((u) => !unit || u.unit_id === unit);
  replace(card, head("phases_title", t("phases_note")),
    counts.length
      ? [columns({ width, label: t("phases_title"), categories: categories(counts.map((row) => row.period)), series, mode: "stacked", format: number }), legend(series)]
      : empty(),
    el("div", { class: "table-wrap tall" }, el("table", { class: "units" },
      el("thead", {}, el("tr", {}, ["col_unit", "col_phase", "col_since", "col_trend"].map((key) => el("th", { text: t(key) })))),
      el("tbody", {}, units.map((u) => el("tr", {},
        el("td", { class: "name" }, el("span", { text: u.name }), el("span", { class: "sub", text: u.village_code })),
        el("td", {}, phaseBadge(u.phase)),
        el("td", { class: "nowrap", text: u.since ? month(u.since) : "–" }),
        el("td", { class: u.trend ? `trend ${u.trend}` : "trend" },
          u.trend ? `${TREND_MARK[u.trend]} ${t(`trend_${u.trend}`)}` : "–")))))));
}

/** WHOQOL domain means at baseline and exit, and how many clients improved. */
export function renderQol(card, data, width) {
  const qol = data.qol;
  const rows = qol.domains.map((d) => ({ label: t(`domain_${d.domain}`), start: d.baseline_mean, end: d.exit_mean }));
  replace(card, head("qol_title", t("qol_note")),
    el("p", { class: "headline", text: t("qol_improved", { improved: number(qol.improved), clients: number(qol.clients) }) }),
    qol.clients
      ? [dumbbells({ width, label: t("qol_title"), rows, format: number, startLabel: t("qol_baseline"), endLabel: t("qol_exit"), colors: COLORS.qol }),
        legend([{ label: t("qol_baseline"), color: COLORS.qol.start }, { label: t("qol_exit"), color: COLORS.qol.end }])]
      : empty());
}
