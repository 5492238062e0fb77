// page_login.js — signing in: an admin account's address and mail password, or an API key with
// full access. Failures are delayed by the server, more with each one.
import { request } from "/dashboard/api.js";
import { h, field, errorBox, showError, page } from "/dashboard/ui.js";

export function showLogin(main, done) {
  const err = errorBox();
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const key = h("input", { type: "password", name: "api_key", autocomplete: "off", required: true, spellcheck: "false" });

  async function submit(e, body) {
    e.preventDefault();
    const button = e.target.querySelector("button");
    button.disabled = true;
    showError(err, null);
    try {
      const s = await request("POST", "/dashboard/session", body);
      password.value = ""; key.value = "";
      done(s);
    } catch (x) {
      showError(err, x);
    } finally {
      button.disabled = false;
    }
  }

  const byPassword = h("form", { class: "panel", id: "login-password", onsubmit: (e) => submit(e, { email: email.value, password: password.value }) },
    h("h2", {}, "With an admin account"),
    field("Email address", email),
    field("Password", password),
    h("button", { type: "submit" }, "Sign in"));
  const byKey = h("form", { class: "panel", id: "login-key", onsubmit: (e) => submit(e, { api_key: key.value }) },
    h("h2", {}, "With an API key"),
    field("API key", key, "A key with full access (re_…)."),
    h("button", { type: "submit" }, "Sign in with the key"));
  page(main, "Sign in", h("div", { class: "login" }, err, byPassword, byKey));
  email.focus();
}
