// The national dashboard's start: loading the national figures and drawing the cards. Signing
// in, the language and the page's states are the session's (session.js): without a valid national
// token the page shows only the sign-in form: every figure comes from /v1/national/*, which
// answers 401 to a missing or bad token and 403 to a regency's roles.

import { getJson } from "./api.js";
import { $, el, replace, widthOf } from "./dom.js";
import { applyLabels, month, t } from "./i18n.js";
import { INDICATORS } from "./national_labels.js";
import { indicatorName, renderKpis, renderPhases, renderProvinces, renderSilent, renderTrend } from "./national_views.js";
import { reload, saveCsv, startDashboard } from "./session.js";

const MONTHS = 12;
const state = { data: null, choice: { indicator: INDICATORS[0], month: null, province: "" } };

/** No figure and no month to choose left (signing out, a refused token). */
function clear() {
  state.data = null;
  $("month").replaceChildren();
  $("scope-name").textContent = "";
}

/** "2026-10" moved by n months. */
function shift(period, n) {
  const [year, mm] = period.split("-").map(Number);
  const index = year * 12 + (mm - 1) + n;
  return `${Math.floor(index / 12)}-${String((index % 12) + 1).padStart(2, "0")}`;
}

function monthsTo(last) {
  return Array.from({ length: MONTHS }, (_, i) => shift(last, i - MONTHS + 1));
}

/** Rows of one level as org unit → period → row. */
function byUnit(rows) {
  const units = new Map();
  for (const row of rows) {
    if (!units.has(row.org_unit)) units.set(row.org_unit, new Map());
    units.get(row.org_unit).set(row.period, row);
  }
  return units;
}

/** Phase rows as org unit → period → {phase: units}. */
function phasesByUnit(rows) {
  const units = new Map();
  for (const row of rows) {
    if (!units.has(row.org_unit)) units.set(row.org_unit, new Map());
    const periods = units.get(row.org_unit);
    if (!periods.has(row.period)) periods.set(row.period, {});
    periods.get(row.period)[row.phase] = (periods.get(row.period)[row.phase] || 0) + row.units;
  }
  return units;
}

/** The regencies grouped by province, provinces and regencies in code order. */
function provincesOf(regencies) {
  const provinces = new Map();
  for (const r of [...regencies].sort((a, b) => a.code.localeCompare(b.code))) {
    if (!provinces.has(r.province)) provinces.set(r.province, { code: r.province, name: r.province_name || r.province, regencies: [] });
    provinces.get(r.province).regencies.push(r);
  }
  return [...provinces.values()].sort((a, b) => a.code.localeCompare(b.code));
}

function only(units) {
  return units.values().next().value || new Map();
}

async function indicatorRows(range, indicator) {
  const query = (level) => getJson("/v1/national/indicators", { level, ...range, indicator });
  const [nation, provinces, regencies] = await Promise.all([query("nation"), query("province"), query("regency")]);
  return { nation: only(byUnit(nation.rows)), provinceRows: byUnit(provinces.rows), regencyRows: byUnit(regencies.rows) };
}

/** The listing, the months and the phases; the figures of the indicator chosen. With
 * figuresOnly, only the figures (another indicator): the rest is the page's already. */
async function fetchFigures(_token, { figuresOnly }) {
  let base = state.data;
  if (!figuresOnly || !base) {
    const listing = await getJson("/v1/national/regencies");
    const lastClosed = listing.last_closed_month;
    const months = monthsTo(lastClosed);
    const range = { from: months[0], to: months.at(-1) };
    const phase = (level) => getJson("/v1/national/phases", { level, ...range });
    const [nationPhases, provincePhases] = await Promise.all([phase("nation"), phase("province")]);
    base = {
      lastClosed, months, range,
      regencies: listing.regencies,
      provinces: provincesOf(listing.regencies),
      silent: listing.regencies.filter((r) => r.silent).sort((a, b) => a.code.localeCompare(b.code)),
      nationPhases: only(phasesByUnit(nationPhases.rows)),
      provincePhases: phasesByUnit(provincePhases.rows),
    };
  }
  const figures = await indicatorRows(base.range, state.choice.indicator);
  return { base, figures };
}

function show({ base, figures }) {
  const data = { ...base, ...figures };
  // the months from the first any regency reported (of the last twelve) to the last closed one
  const first = base.months.findIndex((period) => data.nation.has(period) || base.nationPhases.has(period));
  data.months = base.months.slice(first < 0 ? base.months.length - 1 : first);
  data.reported = (period) => data.regencies.filter((r) => data.regencyRows.get(r.code)?.get(period)?.reporting).length;
  state.data = data;
  if (!data.months.includes(state.choice.month)) state.choice.month = data.lastClosed;
  if (!data.provinces.some((p) => p.code === state.choice.province)) state.choice.province = "";
  render();
}

function renderChoices() {
  replace($("indicator"), INDICATORS.map((name) => el("option", { value: name, selected: name === state.choice.indicator, text: indicatorName(name) })));
  replace($("month"), [...state.data.months].reverse().map((period) => el("option", { value: period, selected: period === state.choice.month, text: month(period, true) })));
}

function render() {
  const data = state.data;
  if (!data) return;
  applyLabels();
  const choice = state.choice;
  const province = data.provinces.find((p) => p.code === choice.province);
  $("scope-name").textContent = `· ${province ? t("n_province", { name: province.name }) : t("n_nation")}`;
  $("range").textContent = t("months_range", { from: month(data.months[0], true), to: month(data.months.at(-1), true) });
  renderChoices();
  renderKpis($("kpis"), data, choice);
  const chooseProvince = (code) => {
    state.choice.province = code;
    render();
    if (code) document.querySelector(`tr[data-province="${code}"]`)?.focus({ preventScroll: true });
  };
  renderProvinces($("card-provinces"), data, widthOf($("card-provinces")), choice, chooseProvince);
  renderTrend($("card-trend"), data, widthOf($("card-trend")), choice);
  renderPhases($("card-phases"), data, widthOf($("card-phases")), choice);
  renderSilent($("card-silent"), data);
}

$("indicator").addEventListener("change", (event) => {
  state.choice.indicator = event.target.value;
  reload({ figuresOnly: true });
});
$("month").addEventListener("change", (event) => {
  state.choice.month = event.target.value;
  render();
});
$("csv").addEventListener("click", () => {
  const range = state.data ? state.data.range : {};
  saveCsv("/v1/national/indicators", { level: "regency", ...range });
});
startDashboard({ fetch: fetchFigures, show, render, clear });
