// Signing in with the OpenID Connect provider: the authorization-code flow with PKCE (RFC 7636).
// The code verifier is 32 random bytes; its S256 challenge is sent to the provider's authorization
// endpoint; back with a code, the page has the reporting service exchange the code and the
// verifier for an access token (POST signin/token), which it keeps as a pasted token is kept. With
// no provider configured (GET signin/config says mode "token") the page asks for a token instead.

const FLOW_KEY = "pulih.signin";

function base64url(bytes) {
  let text = "";
  for (const byte of new Uint8Array(bytes)) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(size) {
  return base64url(crypto.getRandomValues(new Uint8Array(size)));
}

/** The S256 challenge of a code verifier. */
export async function challengeOf(verifier) {
  return base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
}

/** Where the provider sends the browser back: this page, without its query. */
function redirectUri() {
  return `${location.origin}${location.pathname}`;
}

/** How this deployment signs in: {mode: "token"} or {mode: "oidc", authorization_endpoint, client_id, scope}. */
export async function signinConfig() {
  try {
    const answer = await fetch("signin/config", { headers: { Accept: "application/json" } });
    return answer.ok ? await answer.json() : { mode: "token" };
  } catch {
    return { mode: "token" };
  }
}

/** Go to the provider's sign-in page, having kept the verifier and state for the way back. */
export async function startSignin(config) {
  const verifier = randomString(32);
  const state = randomString(16);
  sessionStorage.setItem(FLOW_KEY, JSON.stringify({ verifier, state }));
  const query = new URLSearchParams({
    response_type: "code",
    client_id: config.client_id,
    redirect_uri: redirectUri(),
    scope: config.scope || "openid",
    state,
    code_challenge: await challengeOf(verifier),
    code_challenge_method: "S256",
  });
  location.assign(`${config.authorization_endpoint}?${query}`);
}

/** Back from the provider: the access token the code is exchanged for, or null when the page was
 * not opened by the provider. Throws when the provider refused or the state does not match. */
export async function finishSignin() {
  const params = new URLSearchParams(location.search);
  if (!params.has("code") && !params.has("error")) return null;
  const flow = JSON.parse(sessionStorage.getItem(FLOW_KEY) || "null");
  sessionStorage.removeItem(FLOW_KEY);
  history.replaceState(null, "", redirectUri());  // the code is single-use: off the address bar
  if (params.has("error") || !flow || params.get("state") !== flow.state) {
    throw new Error(params.get("error") || "state_mismatch");
  }
  const answer = await fetch("signin/token", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ code: params.get("code"), code_verifier: flow.verifier, redirect_uri: redirectUri() }),
  });
  if (!answer.ok) throw new Error(`signin_${answer.status}`);
  return (await answer.json()).access_token;
}
