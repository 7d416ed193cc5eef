// Talking to the reporting API with the token the user signed in with. The token lives in
// sessionStorage: it is gone when the tab closes, and no figure is asked for without it.

const TOKEN_KEY = "pulih.token";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

export function savedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** The claims of a token (role, regency, unit_id), read without checking the signature: only to
 * choose what to ask for. The API checks the token on every request. */
export function claimsOf(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload.padEnd(payload.length + ((4 - (payload.length % 4)) % 4), "=")));
  } catch {
    return {};
  }
}

function url(path, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== null && value !== undefined && value !== "") query.set(name, value);
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

async function request(path, params, accept) {
  const token = savedToken();
  if (!token) throw new ApiError(401, "missing_token");
  const response = await fetch(url(path, params), {
    headers: { Authorization: `Bearer ${token}`, Accept: accept },
  });
  if (!response.ok) {
    let body = {};
    try {
      body = await response.json();
    } catch {
      // not the kit's error shape (a proxy's page): the status says enough
    }
    throw new ApiError(response.status, body.code, body.message);
  }
  return response;
}

/** GET a JSON resource of the API. */
export async function getJson(path, params) {
  return (await request(path, params, "application/json")).json();
}

/** GET a resource as CSV and hand it to the browser as a download. */
export async function downloadCsv(path, params) {
  const response = await request(path, params, "text/csv");
  const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = match ? match[1] : "pulih.csv";
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}
