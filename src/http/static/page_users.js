// page_users.js — mail accounts and aliases (the API's /users and /aliases, what `mailwerk user` and
// `mailwerk alias` change): add an account with a password, let it sign in here or not, remove it;
// add and remove aliases.
import { get, post, patch, del } from "/dashboard/api.js";
import { h, page, table, badge, field, errorBox, showError, announce } from "/dashboard/ui.js";

const quota = (q) => (q ? (q / 1048576).toFixed(0) + " MiB" : "none");

export async function showUsers(main) {
  const err = errorBox();
  const address = h("input", { type: "email", required: true, autocomplete: "off" });
  const password = h("input", { type: "password", required: true, minlength: "8", autocomplete: "new-password" });
  const admin = h("input", { type: "checkbox" });
  const alias = h("input", { type: "text", required: true, placeholder: "team@example.org or @example.org", autocomplete: "off" });
  const targets = h("input", { type: "text", required: true, placeholder: "alice@example.org, bob@elsewhere.net", autocomplete: "off" });
  const users = h("div", { id: "user-list" });
  const aliases = h("div", { id: "alias-list" });
  const path = (kind, a) => "/" + kind + "/" + encodeURIComponent(a);
  async function load() {
    const [res, al] = await Promise.all([get("/users"), get("/aliases")]);
    users.replaceChildren(table("Accounts", [
      { label: "Address", cell: (u) => u.address },
      { label: "Dashboard", cell: (u) => (u.admin ? badge("admin") : "no") },
      { label: "Quota", cell: (u) => quota(u.quota) },
      { label: "", cell: (u) => h("div", { class: "row" },
        h("button", { type: "button", class: "secondary", "aria-label": (u.admin ? "No dashboard" : "Allow the dashboard") + " for " + u.address, onclick: async () => {
          try { await patch(path("users", u.address), { admin: !u.admin }); await load(); }
          catch (x) { showError(err, x); }
        } }, u.admin ? "No dashboard" : "Allow the dashboard"),
        h("button", { type: "button", class: "danger", "aria-label": "Remove " + u.address, onclick: async () => {
          if (!confirm("Remove the account " + u.address + "? Its mail stays on disk.")) return;
          try { await del(path("users", u.address)); announce("Removed " + u.address); await load(); }
          catch (x) { showError(err, x); }
        } }, "Remove")) },
    ], res.data || [], "No accounts."));
    aliases.replaceChildren(table("Aliases", [
      { label: "Alias", cell: (a) => a.address },
      { label: "Delivers to", cell: (a) => (a.targets || []).join(", ") },
      { label: "", cell: (a) => h("button", { type: "button", class: "danger", "aria-label": "Remove the alias " + a.address, onclick: async () => {
        try { await del(path("aliases", a.address)); announce("Removed " + a.address); await load(); }
        catch (x) { showError(err, x); }
      } }, "Remove") },
    ], al.data || [], "No aliases."));
  }
  const addUser = h("form", { class: "panel", id: "user-add", onsubmit: async (e) => {
    e.preventDefault();
    try {
      await post("/users", { address: address.value.trim(), password: password.value, admin: admin.checked });
      announce("Added " + address.value.trim());
      address.value = ""; password.value = ""; admin.checked = false;
      await load();
    } catch (x) { showError(err, x); }
  } }, h("div", { class: "row" }, field("Address", address), field("Password", password, "At least 8 characters."),
    h("div", { class: "field" }, h("label", {}, admin, " May use the dashboard"))),
    h("button", { type: "submit" }, "Add account"));
  const addAlias = h("form", { class: "panel", id: "alias-add", onsubmit: async (e) => {
    e.preventDefault();
    try {
      await post("/aliases", { address: alias.value.trim(), targets: targets.value.split(",").map((t) => t.trim()).filter(Boolean) });
      announce("Added " + alias.value.trim());
      alias.value = ""; targets.value = "";
      await load();
    } catch (x) { showError(err, x); }
  } }, h("div", { class: "row" }, field("Alias", alias), field("Delivers to", targets, "Addresses, separated by commas.")),
    h("button", { type: "submit" }, "Add alias"));
  page(main, "Accounts and aliases", err, h("h2", {}, "Accounts"), addUser, users, h("h2", {}, "Aliases"), addAlias, aliases);
  try { await load(); } catch (x) { showError(err, x); }
}
