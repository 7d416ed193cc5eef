// The dashboard's start: what to load for whom, and drawing the cards. Signing in, the language
// and the page's states are the session's (session.js): without a valid token the page shows only
// the sign-in form: every figure comes from the API, which answers 401 to a missing or bad token
// and 403 to a role that may not read it.

import { claimsOf, getJson } from "./api.js";
import { $, el, replace, widthOf } from "./dom.js";
import { applyLabels, month, t } from "./i18n.js";
import { reload, saveCsv, startDashboard } from "./session.js";
import { renderFunnel, renderKpis, renderPhases, renderQol, renderReferrals, renderRisk, renderSessions } from "./views.js";

const state = { data: null, claims: {}, unit: "", funnelMonth: null };

/** No figure and no scope left (signing out, a refused token). */
function clear() {
  state.data = null;
  $("scope").replaceChildren();
  $("regency").textContent = "";
}

function indicatorQuery() {
  const unit = state.claims.role === "agent" ? state.claims.unit_id : state.unit;
  return unit ? { level: "unit", id: unit, by: "month" } : { level: "regency", by: "month" };
}

function seriesOf(table) {
  const series = Object.fromEntries(table.indicators.map((name) => [name, []]));
  for (const row of table.rows) for (const name of table.indicators) series[name].push(row.indicators[name]);
  return { months: table.rows.map((row) => row.period), series };
}

async function fetchFigures(token) {
  state.claims = claimsOf(token);
  const unit = state.claims.role === "agent" ? undefined : state.unit || undefined;
  const [table, referrals, qol, phases] = await Promise.all([
    getJson("/v1/indicators", indicatorQuery()),
    getJson("/v1/referrals/summary", { unit_id: unit }),
    getJson("/v1/qol/summary", { unit_id: unit }),
    getJson("/v1/units/phases", { detail: "false" }),
  ]);
  return { ...seriesOf(table), referrals, qol, phases };
}

function show(data) {
  state.data = data;
  if (!data.months.includes(state.funnelMonth)) state.funnelMonth = data.months.at(-1);
  render();
}

function renderScope() {
  const select = $("scope");
  if (state.claims.role === "agent") {
    replace(select, el("option", { value: "", text: t("your_unit") }));
    select.disabled = true;
    return;
  }
  select.disabled = false;
  replace(select,
    el("option", { value: "", text: t("whole_regency") }),
    state.data.phases.units.map((u) => el("option", { value: u.unit_id, text: u.name, selected: u.unit_id === state.unit })));
}

function render() {
  const data = state.data;
  if (!data) return;
  applyLabels();
  $("regency").textContent = state.claims.regency ? `· ${t("regency", { code: state.claims.regency })}` : "";
  $("range").textContent = t("months_range", { from: month(data.months[0], true), to: month(data.months.at(-1), true) });
  renderScope();
  renderKpis($("kpis"), data);
  const draw = (id, fn, ...rest) => fn($(id), data, widthOf($(id)), ...rest);
  const chooseMonth = (chosen) => {
    state.funnelMonth = chosen;
    draw("card-funnel", renderFunnel, chosen, chooseMonth);
  };
  draw("card-funnel", renderFunnel, state.funnelMonth, chooseMonth);
  draw("card-risk", renderRisk);
  draw("card-sessions", renderSessions);
  draw("card-referrals", renderReferrals);
  draw("card-phases", renderPhases, state.claims.role === "agent" ? "" : state.unit);
  draw("card-qol", renderQol);
}

$("scope").addEventListener("change", (event) => {
  state.unit = event.target.value;
  reload();
});
$("csv").addEventListener("click", () => saveCsv("/v1/indicators", indicatorQuery()));
startDashboard({ fetch: fetchFigures, show, render, clear });
