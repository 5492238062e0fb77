// api.js — the JSON API, called with the session cookie (same origin). Every change carries the
// session's CSRF token in X-CSRF-Token; the server refuses a cookie-authenticated change without it.

let csrfToken = "";
let onSignedOut = () => {};

export class ApiError extends Error {
  constructor(status, name, message) {
    super(message || name || "HTTP " + status);
    this.status = status;
    this.name = name || "error";
  }
}

export function setCsrfToken(token) { csrfToken = token || ""; }
export function whenSignedOut(fn) { onSignedOut = fn; }

export async function request(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method, headers, credentials: "same-origin", cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data && data.name, data && data.message);
    if (res.status === 401 && !path.startsWith("/dashboard/session")) onSignedOut();
    throw err;
  }
  return data;
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, body === undefined ? {} : body);
export const patch = (path, body) => request("PATCH", path, body);
export const del = (path) => request("DELETE", path);

// Every page of a Resend list (newest first), up to maxPages pages of 100.
export async function listAll(path, maxPages = 10, stop = () => false) {
  const out = [];
  let after = "";
  for (let i = 0; i < maxPages; i++) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await get(path + sep + "limit=100" + (after ? "&after=" + encodeURIComponent(after) : ""));
    const items = page.data || [];
    out.push(...items);
    if (!page.has_more || items.length === 0 || stop(items)) return { items: out, complete: !page.has_more };
    after = items[items.length - 1].id;
  }
  return { items: out, complete: false };
}
