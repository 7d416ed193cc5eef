// The dashboard's start: sign-in, language, what to load for whom, and drawing the cards.
// Without a valid token the page shows only the sign-in form: every figure comes from the API,
// which answers 401 to a missing or bad token and 403 to a role that may not read it.

import { ApiError, claimsOf, downloadCsv, forgetToken, getJson, saveToken, savedToken } from "./api.js";
import { el, replace } from "./dom.js";
import { applyLabels, language, month, setLanguage, t } from "./i18n.js";
import { renderFunnel, renderKpis, renderPhases, renderQol, renderReferrals, renderRisk, renderSessions } from "./views.js";

const $ = (id) => document.getElementById(id);
const state = { data: null, claims: {}, unit: "", funnelMonth: null, loading: 0 };

function setPage(name) {
  document.body.dataset.state = name;
  $("login").hidden = name !== "login";
  $("dashboard").hidden = name === "login";
  $("logout").hidden = name === "login";
}

/** Back to the sign-in form, with no figure left on the page. */
function showLogin(message) {
  state.data = null;
  for (const card of document.querySelectorAll("#dashboard .card, #kpis")) card.replaceChildren();
  $("scope").replaceChildren();
  $("regency").textContent = "";
  $("login-error").hidden = !message;
  $("login-error").textContent = message || "";
  setPage("login");
  $("token").focus();
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

async function load() {
  const token = savedToken();
  if (!token) return showLogin();
  state.claims = claimsOf(token);
  const ticket = ++state.loading;
  setPage("loading");
  $("status").textContent = t("loading");
  const unit = state.claims.role === "agent" ? undefined : state.unit || undefined;
  try {
    const [table, referrals, qol, phases] = await Promise.all([
      getJson("/v1/indicators", indicatorQuery()),
      getJson("/v1/referrals/summary", { unit_id: unit }),
      getJson("/v1/qol/summary", { unit_id: unit }),
      getJson("/v1/units/phases", { detail: "false" }),
    ]);
    if (ticket !== state.loading) return;  // a newer load (another scope) has started
    state.data = { ...seriesOf(table), referrals, qol, phases };
    if (!state.data.months.includes(state.funnelMonth)) state.funnelMonth = state.data.months.at(-1);
    $("status").textContent = "";
    render();
    setPage("ready");
  } catch (error) {
    if (ticket !== state.loading) return;
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      forgetToken();
      return showLogin(t(error.status === 401 ? "bad_token" : "no_right"));
    }
    $("status").textContent = t("load_failed");
    setPage("error");
  }
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

function widthOf(card) {
  const style = getComputedStyle(card);
  return Math.floor(card.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight));
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

function start() {
  applyLabels();
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === language()));
    button.addEventListener("click", () => {
      setLanguage(button.dataset.lang);
      for (const other of document.querySelectorAll("[data-lang]")) {
        other.setAttribute("aria-pressed", String(other.dataset.lang === language()));
      }
      applyLabels();
      render();
    });
  }
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (!token) return;
    $("token").value = "";
    saveToken(token);
    load();
  });
  $("logout").addEventListener("click", () => {
    forgetToken();
    showLogin();
  });
  $("scope").addEventListener("change", (event) => {
    state.unit = event.target.value;
    load();
  });
  $("csv").addEventListener("click", () => {
    downloadCsv("/v1/indicators", indicatorQuery()).catch(() => {
      $("status").textContent = t("load_failed");
    });
  });
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(render, 150);
  });
  load();
}

start();
