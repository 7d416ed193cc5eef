// A dashboard page's session, the same for the regency dashboard (main.js) and the national one
// (national.js): signing in (with the identity provider, authorization code with PKCE — signin.js
// — when the deployment has one; else the form for a pasted development token) and signing out, the language buttons, the state the page is in
// (login, loading, ready, error) and loading its figures with the token signed in with. Without a
// token the page shows only the sign-in form; a 401 or 403 from the API forgets the token and says
// why there. Each page gives what is its own (startDashboard): how to fetch its figures, keep and
// draw them, and take them off the page.

import { ApiError, downloadCsv, forgetToken, saveToken, savedToken } from "./api.js";
import { $ } from "./dom.js";
import { finishSignin, signinConfig, startSignin } from "./signin.js";
import { applyLabels, language, setLanguage, t } from "./i18n.js";

let page = null;
let loading = 0;

function setPage(name) {
  document.body.dataset.state = name;
  $("login").hidden = name !== "login";
  $("dashboard").hidden = name === "login";
  $("logout").hidden = name === "login";
}

/** Back to the sign-in form, with no figure left on the page. */
function showLogin(message) {
  page.clear();
  for (const card of document.querySelectorAll("#dashboard .card, #kpis")) card.replaceChildren();
  $("login-error").hidden = !message;
  $("login-error").textContent = message || "";
  setPage("login");
  $("token").focus();
}

/** Fetch the page's figures again and draw them. With figuresOnly the page keeps showing what it
 * has while they load (another indicator of the same months); a load started later wins. */
export async function reload({ figuresOnly = false } = {}) {
  const token = savedToken();
  if (!token) return showLogin();
  const ticket = ++loading;
  if (!figuresOnly) setPage("loading");
  $("status").textContent = t("loading");
  try {
    const fetched = await page.fetch(token, { figuresOnly });
    if (ticket !== loading) return;  // a newer load (another choice) has started
    $("status").textContent = "";
    page.show(fetched);
    setPage("ready");
  } catch (error) {
    if (ticket !== loading) return;
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      forgetToken();
      return showLogin(t(error.status === 401 ? "bad_token" : "no_right"));
    }
    $("status").textContent = t("load_failed");
    setPage("error");
  }
}

/** The CSV button's download; a failure is said in the status line. */
export function saveCsv(path, params) {
  downloadCsv(path, params).catch(() => {
    $("status").textContent = t("load_failed");
  });
}

/**
 * Start a dashboard page and load it. The page gives:
 * - fetch(token, {figuresOnly}): its figures from the API (rejects with the API's ApiError);
 * - show(fetched): keep them and draw the page;
 * - render(): draw the page again (another language, another width);
 * - clear(): forget its figures and empty its own controls (signing out, a refused token).
 */
export function startDashboard(dashboard) {
  page = dashboard;
  applyLabels();
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === language()));
    button.addEventListener("click", () => {
      setLanguage(button.dataset.lang);
      for (const other of document.querySelectorAll("[data-lang]")) {
        other.setAttribute("aria-pressed", String(other.dataset.lang === language()));
      }
      applyLabels();
      page.render();
    });
  }
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (!token) return;
    $("token").value = "";
    saveToken(token);
    reload();
  });
  $("logout").addEventListener("click", () => {
    forgetToken();
    showLogin();
  });
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(page.render, 150);
  });
  signIn().then(reload, (error) => showLogin(`${t("bad_token")} (${error.message})`));
}

/** With an identity provider: the sign-in form offers it instead of the token field, and a page
 * the provider sent back to exchanges its code for the token it then keeps. */
async function signIn() {
  const config = await signinConfig();
  if (config.mode !== "oidc") return;
  const form = $("login-form");
  for (const field of form.querySelectorAll("label, input, button")) field.hidden = true;
  const button = document.createElement("button");
  button.type = "button";
  button.id = "signin-provider";
  button.textContent = t("login");
  button.addEventListener("click", () => startSignin(config));
  form.append(button);
  const token = await finishSignin();
  if (token) saveToken(token);
}
