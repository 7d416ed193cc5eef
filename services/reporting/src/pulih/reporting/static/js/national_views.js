// The national dashboard's cards: each takes what national.js loaded (state.data), the choices
// (indicator, month, province) and the card's width, and draws its title, note, chart and table.
// A total over cells some regency hid says so ("≥ 40 · 2 hidden"): it is never shown as exact.

import { bars, columns, legend, lines } from "./charts.js";
import { el, replace, svg } from "./dom.js";
import { month, number, t } from "./i18n.js";
import { COLORS } from "./views.js";

const PHASES = Object.keys(COLORS.phases);
const PHASE_NAMES = { rintisan: "Rintisan", tumbuh: "Tumbuh", berkembang: "Berkembang", tangguh: "Tangguh", prima: "Prima" };
const NATION_COLOR = "#0f766e";
const PROVINCE_COLOR = "#7c3aed";

function head(title, note) {
  return el("header", { class: "card-head" }, el("h2", { text: title }), note ? el("p", { class: "note", text: note }) : null);
}

function categories(months) {
  return months.map((period) => ({ key: period, short: month(period), long: month(period, true) }));
}

export function indicatorName(indicator) {
  return t(`indicator_${indicator}`);
}

/** A total (nation or province) for display: "–" when nobody reported, "≥ v" over hidden cells. */
export function totalText(row) {
  if (!row || !row.reporting) return { text: "–", hidden: 0 };
  const value = row.value ?? 0;
  if (row.hidden > 0) return { text: t("n_at_least", { value: number(value) }), hidden: row.hidden, value };
  return { text: number(value), hidden: 0, value };
}

function hiddenMark(count) {
  return el("span", { class: "hidden-mark", title: t("n_hidden_title", { count }), text: t("n_hidden", { count }) });
}

/** A total's cell content: the value (marked inexact) and how many cells were hidden. */
function totalCell(row) {
  const shown = totalText(row);
  return [
    el("span", { class: shown.hidden ? "value inexact" : "value", text: shown.text }),
    shown.hidden ? hiddenMark(shown.hidden) : null,
  ];
}

/** A regency's own cell: its value, "hidden" where it suppressed it, or "not reported". */
function regencyCell(row) {
  if (!row || !row.reporting) return el("span", { class: "muted", text: t("n_not_reported") });
  if (row.hidden > 0) return el("span", { class: "hidden-mark", title: t("n_hidden_cell_title"), text: t("n_hidden_cell") });
  return el("span", { class: "value", text: number(row.value ?? 0) });
}

function valueBar(value, max, width = 120) {
  const w = max > 0 && value ? Math.max(2, (value / max) * width) : 0;
  return svg("svg", { width, height: 12, viewBox: `0 0 ${width} 12`, "aria-hidden": "true" },
    svg("rect", { x: 0, y: 1, width: w, height: 10, rx: 2, fill: NATION_COLOR }));
}

/** The headline tiles for the chosen month: the nation's value, who reported, who did not. */
export function renderKpis(node, data, choice) {
  const nation = data.nation.get(choice.month);
  const shown = totalText(nation);
  const expected = data.regencies.length;
  const reporting = data.reported(choice.month);
  const silent = data.silent.length;
  const provinces = data.provinces.filter((p) => data.provinceRows.get(p.code)?.get(choice.month)?.reporting).length;
  const tile = (key, value, note, extra = {}) => el("div", { class: extra.alarm ? "kpi alarm" : "kpi", "data-kpi": key },
    el("span", { class: shown.hidden && key === "value" ? "kpi-value inexact" : "kpi-value", text: value }),
    el("span", { class: "kpi-label", text: extra.label || t(key) }),
    note ? el("span", { class: "kpi-note", text: note }) : null,
    extra.mark || null);
  replace(node,
    el("p", { class: "kpi-period", text: month(choice.month, true) }),
    el("div", { class: "kpi-tiles" },
      tile("value", shown.text, null, {
        label: t("n_kpi_value", { indicator: indicatorName(choice.indicator) }),
        mark: shown.hidden ? hiddenMark(shown.hidden) : null,
      }),
      tile("n_kpi_reporting", t("n_of", { part: number(reporting), whole: number(expected) }),
        t("n_kpi_reporting_note", { month: month(choice.month, true) })),
      tile("n_kpi_provinces", t("n_of", { part: number(provinces), whole: number(data.provinces.length) })),
      tile("n_kpi_silent", number(silent), t("n_kpi_silent_note", { month: month(data.lastClosed, true) }), { alarm: silent > 0 })));
}

/** The province table for the chosen month (click a row: its regencies below it) and the
 * nation's total in the footer. */
export function renderProvinces(card, data, width, choice, onChoose) {
  const rowsOf = (code) => data.provinceRows.get(code)?.get(choice.month);
  const max = Math.max(0, ...data.provinces.map((p) => rowsOf(p.code)?.value ?? 0));
  const barW = Math.max(40, Math.min(140, Math.floor(width * 0.12)));
  const provinceTable = el("div", { class: "table-wrap" }, el("table", { class: "provinces" },
    el("thead", {}, el("tr", {},
      el("th", { text: t("n_col_code") }), el("th", { text: t("n_col_province") }),
      el("th", { class: "num", text: t("n_col_value") }), el("th", { class: "bar-cell", "aria-hidden": "true" }),
      el("th", { class: "num", text: t("n_col_reporting") }))),
    el("tbody", {}, data.provinces.map((p) => {
      const row = rowsOf(p.code);
      const reporting = row?.reporting ?? 0;
      const choose = () => onChoose(choice.province === p.code ? "" : p.code);
      return el("tr", {
        class: "province", "data-province": p.code, tabindex: 0, role: "button",
        "aria-selected": String(choice.province === p.code),
        on: { click: choose, keydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); choose(); } } },
      },
      el("td", { class: "code", text: p.code }),
      el("td", { class: "name", text: p.name }),
      el("td", { class: "num" }, totalCell(row)),
      el("td", { class: "bar-cell" }, valueBar(row?.value ?? 0, max, barW)),
      el("td", { class: "num" }, el("span", {
        class: reporting < p.regencies.length ? "reporting-of short" : "reporting-of",
        text: t("n_of", { part: number(reporting), whole: number(p.regencies.length) }),
      })));
    })),
    el("tfoot", {}, el("tr", { "data-nation": "" },
      el("td", {}), el("td", { text: t("n_total") }),
      el("td", { class: "num" }, totalCell(data.nation.get(choice.month))),
      el("td", { class: "bar-cell" }),
      el("td", { class: "num" }, el("span", {
        class: "reporting-of", text: t("n_of", { part: number(data.reported(choice.month)), whole: number(data.regencies.length) }),
      }))))));
  const chosen = data.provinces.find((p) => p.code === choice.province);
  const regencies = chosen
    ? [
      el("h3", {}, t("n_regencies_title", { name: chosen.name }),
        el("button", { class: "quiet back", type: "button", text: t("n_all_provinces"), on: { click: () => onChoose("") } })),
      el("div", { class: "table-wrap" }, el("table", { class: "regencies" },
        el("thead", {}, el("tr", {},
          el("th", { text: t("n_col_code") }), el("th", { text: t("n_col_regency") }),
          el("th", { class: "num", text: t("n_col_value") }), el("th", { class: "num", text: t("n_col_last") }))),
        el("tbody", {}, chosen.regencies.map((r) => el("tr", { "data-regency": r.code },
          el("td", { class: "code", text: r.code }),
          el("td", { class: "name", text: r.name }),
          el("td", { class: "num" }, regencyCell(data.regencyRows.get(r.code)?.get(choice.month))),
          el("td", { class: r.silent ? "num stale" : "num", text: r.last_period ? month(r.last_period, true) : t("n_never") })))))),
    ]
    : [el("p", { class: "empty", text: t("n_choose_province") })];
  replace(card,
    head(t("n_provinces_title"), t("n_provinces_note", { indicator: indicatorName(choice.indicator), month: month(choice.month, true) })),
    el("div", { class: "split" }, el("div", {}, provinceTable), el("div", { class: "regency-list" }, regencies)));
}

function seriesOf(rowsByPeriod, months, label, color) {
  const rows = months.map((period) => rowsByPeriod?.get(period));
  return {
    label, color,
    values: rows.map((row) => (row && row.reporting ? row.value ?? 0 : null)),
    notes: rows.map((row) => (row && row.reporting && row.hidden > 0 ? `${totalText(row).text} (${t("n_hidden", { count: row.hidden })})` : null)),
  };
}

/** The chosen indicator by month for the nation, and for the chosen province. */
export function renderTrend(card, data, width, choice) {
  const series = [seriesOf(data.nation, data.months, t("n_nation"), NATION_COLOR)];
  const chosen = data.provinces.find((p) => p.code === choice.province);
  if (chosen) series.push(seriesOf(data.provinceRows.get(chosen.code), data.months, chosen.name, PROVINCE_COLOR));
  replace(card, head(t("n_trend_title"), t("n_trend_note", { indicator: indicatorName(choice.indicator) })),
    lines({ width, label: t("n_trend_title"), categories: categories(data.months), series, format: number }),
    legend(series));
}

/** Units by phase in the chosen month (the nation or the chosen province), and month by month. */
export function renderPhases(card, data, width, choice) {
  const chosen = data.provinces.find((p) => p.code === choice.province);
  const byPeriod = chosen ? data.provincePhases.get(chosen.code) || new Map() : data.nationPhases;
  const counts = byPeriod.get(choice.month) || {};
  const items = PHASES.map((phase) => ({ label: PHASE_NAMES[phase], value: counts[phase] || 0, color: COLORS.phases[phase] }));
  const total = items.reduce((sum, item) => sum + item.value, 0);
  const months = data.months.filter((period) => byPeriod.has(period));
  const series = PHASES.map((phase) => ({
    label: PHASE_NAMES[phase], color: COLORS.phases[phase], values: months.map((period) => byPeriod.get(period)[phase] || 0),
  }));
  replace(card,
    head(t("n_phases_title"), t("n_phases_note", { month: month(choice.month, true), scope: chosen ? chosen.name : t("n_nation") })),
    el("p", { class: "headline", text: t("n_units", { count: number(total) }) }),
    total ? bars({ width, label: t("n_phases_title"), items, format: number }) : el("p", { class: "empty", text: t("no_data") }),
    months.length
      ? [el("h3", { text: t("n_phases_months") }),
        columns({ width, height: 170, label: t("n_phases_months"), categories: categories(months), series, mode: "stacked", format: number }),
        legend(series)]
      : null);
}

/** The regencies with no aggregate for the last closed month, with the last month they sent. */
export function renderSilent(card, data) {
  const silent = data.silent;
  replace(card,
    el("header", { class: "card-head" },
      el("h2", {}, t("n_silent_title"), " ", el("span", { class: silent.length ? "count-pill" : "count-pill zero", text: number(silent.length) })),
      el("p", { class: "note", text: t("n_silent_note", { month: month(data.lastClosed, true) }) })),
    silent.length
      ? el("div", { class: "table-wrap tall" }, el("table", { class: "silent" },
        el("thead", {}, el("tr", {}, ["n_col_regency", "n_col_province", "n_col_last"].map((key) => el("th", { text: t(key) })))),
        el("tbody", {}, silent.map((r) => el("tr", { "data-regency": r.code },
          el("td", { class: "name" }, el("span", { text: r.name || r.code }), el("span", { class: "sub", text: r.code })),
          el("td", { text: r.province_name || r.province }),
          el("td", { class: "stale", text: r.last_period ? month(r.last_period, true) : t("n_never") }))))))
      : el("p", { class: "ok", text: t("n_silent_none", { month: month(data.lastClosed, true) }) }));
}
