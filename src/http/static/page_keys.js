// page_keys.js — API keys: the list, making one (its token is shown once, here), and revoking.
import { get, post, del } from "/dashboard/api.js";
import { h, page, table, badge, when, field, errorBox, showError, announce, copyButton } from "/dashboard/ui.js";

export async function showKeys(main) {
  const err = errorBox();
  const name = h("input", { type: "text", required: true, maxlength: "50", autocomplete: "off" });
  const perm = h("select", {}, h("option", { value: "full_access" }, "full access"), h("option", { value: "sending_access" }, "sending only"));
  const domain = h("input", { type: "text", placeholder: "all domains", autocomplete: "off" });
  const made = h("div", { id: "key-made" });
  const out = h("div", { id: "key-list" });
  async function load() {
    const res = await get("/api-keys");
    out.replaceChildren(table("API keys", [
      { label: "Name", cell: (k) => k.name },
      { label: "Permission", cell: (k) => badge(k.permission || "") },
      { label: "Domain", cell: (k) => k.domain_id || "all" },
      { label: "Created", cell: (k) => when(k.created_at) },
      { label: "Last used", cell: (k) => when(k.last_used_at) || "never" },
      { label: "", cell: (k) => h("button", { type: "button", class: "danger", "aria-label": "Revoke the key " + k.name, onclick: async () => {
        if (!confirm("Revoke the key " + k.name + "? Applications using it stop working.")) return;
        try { await del("/api-keys/" + encodeURIComponent(k.id)); announce("Revoked " + k.name); await load(); }
        catch (x) { showError(err, x); }
      } }, "Revoke") },
    ], res.data || [], "No keys yet."));
  }
  const form = h("form", { class: "panel", id: "key-add", onsubmit: async (e) => {
    e.preventDefault();
    const body = { name: name.value.trim(), permission: perm.value };
    if (domain.value.trim()) body.domain_id = domain.value.trim();
    try {
      const k = await post("/api-keys", body);
      made.replaceChildren(h("div", { class: "panel", role: "status" },
        h("p", {}, "The key ", h("strong", {}, body.name), " — copy it now, it is not shown again:"),
        h("div", { class: "secret" }, h("code", { class: "mono", id: "key-token" }, k.token), copyButton(k.token, "the new key"))));
      name.value = "";
      await load();
    } catch (x) { showError(err, x); }
  } }, h("div", { class: "row" }, field("Name", name), field("Permission", perm), field("Sending domain", domain, "Only for sending keys; empty for all.")),
    h("button", { type: "submit" }, "Create key"));
  page(main, "API keys", err, form, made, out);
  try { await load(); } catch (x) { showError(err, x); }
}
