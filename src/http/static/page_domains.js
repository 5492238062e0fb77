// page_domains.js — mail domains: the list, adding one (it gets a DKIM key), and one domain's DNS
// records to publish, each with a copy button and its status; Verify runs the check (POST
// /domains/{id}/verify). Both pages follow the server while they are open (it re-checks every
// domain in the background, so a record can break or be fixed at any time): the list every 5 s,
// a domain every 5 s and every 1.5 s while a check runs. Only what changed is redrawn: the
// statuses in place while the records stay the same (focus and the copy buttons stay put), a
// status change announced. Then its DKIM keys, a new one, and rotation (activating it in place of the
// old one; /domains/{id}/dkim-keys, as `mailwerk dkim`).
import { get, post, del } from "/dashboard/api.js";
import { h, page, table, badge, when, field, errorBox, showError, announce, copyButton, redraw } from "/dashboard/ui.js";

export async function showDomains(main) {
  const err = errorBox();
  const name = h("input", { type: "text", name: "domain", required: true, placeholder: "example.org", autocomplete: "off" });
  const out = h("div", { id: "domain-list", "aria-live": "polite" });
  let shown = null;
  async function load() {
    const res = await get("/domains?limit=100");
    const seen = JSON.stringify((res.data || []).map((d) => [d.id, d.name, d.status, d.capabilities]));
    if (seen === shown) return;
    shown = seen;
    redraw(out, table("Domains", [
      { label: "Domain", cell: (d) => h("a", { href: "#/domains/" + encodeURIComponent(d.id) }, d.name) },
      { label: "Status", cell: (d) => badge(d.status) },
      { label: "Sending", cell: (d) => badge(d.capabilities ? d.capabilities.sending : "") },
      { label: "Created", cell: (d) => when(d.created_at) },
    ], res.data || [], "No domains yet."));
  }
  const form = h("form", { class: "row panel", id: "domain-add", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const d = await post("/domains", { name: name.value.trim() });
      announce("Added " + d.name);
      location.hash = "#/domains/" + encodeURIComponent(d.id);
    } catch (x) { showError(err, x); }
  } }, field("New domain", name), h("button", { type: "submit" }, "Add domain"));
  page(main, "Domains", err, form, out);
  const refresh = async () => { try { await load(); showError(err, null); } catch (x) { showError(err, x); } };
  await refresh();
  const timer = setInterval(refresh, 5000);
  return () => clearInterval(timer);
}

export async function showDomain(main, id) {
  const err = errorBox();
  const box = h("div", { id: "domain" });
  const keys = h("section", { id: "dkim-keys", "aria-labelledby": "dkim-h" });
  const keyPath = (d) => "/domains/" + encodeURIComponent(d.id) + "/dkim-keys";

  function renderKeys(d, res) {
    const month = new Date().toISOString().slice(0, 7).replace("-", "");
    const selector = h("input", { type: "text", required: true, value: "mw" + month + "b", autocomplete: "off", pattern: "[A-Za-z0-9.-]+" });
    const algorithm = h("select", {}, h("option", { value: "rsa" }, "RSA 2048"), h("option", { value: "ed25519" }, "Ed25519"));
    keys.replaceChildren(h("h2", { id: "dkim-h" }, "DKIM keys"),
      h("p", { class: "muted" }, "To rotate: make a key, publish its record, verify, then activate it; keep the old record published a few days."),
      table("DKIM keys of " + d.name, [
        { label: "Selector", cell: (k) => k.selector, class: "mono" },
        { label: "Key", cell: (k) => k.algorithm + " " + k.bits },
        { label: "Signs", cell: (k) => (k.active ? badge("active") : "no") },
        { label: "TXT record", cell: (k) => h("div", {}, h("div", { class: "mono" }, k.name + "  " + k.value), copyButton(k.value, "DKIM value of " + k.selector)) },
        { label: "", cell: (k) => (k.active ? "" : h("button", { type: "button", class: "secondary", "aria-label": "Activate " + k.selector, onclick: async () => {
          if (!confirm("Sign with " + k.selector + " from now on? Its record must be published.")) return;
          try { await post(keyPath(d) + "/" + encodeURIComponent(k.selector) + "/activate"); renderKeys(d, await get(keyPath(d))); announce(k.selector + " signs now"); }
          catch (x) { showError(err, x); }
        } }, "Activate")) },
      ], res.data || [], "No DKIM key: mail from this domain is not signed."),
      h("form", { class: "row panel", id: "dkim-add", onsubmit: async (e) => {
        e.preventDefault();
        try { await post(keyPath(d), { selector: selector.value.trim(), algorithm: algorithm.value }); renderKeys(d, await get(keyPath(d))); announce("Made key " + selector.value); }
        catch (x) { showError(err, x); }
      } }, field("New selector", selector), field("Algorithm", algorithm), h("button", { type: "submit" }, "Make key")));
  }
  // one timer at a time; a Verify press asks for the next look soon, whatever is in flight
  let timer = null, gone = false, shown = null, soon = false;
  const stop = () => { gone = true; if (timer) clearTimeout(timer); };
  const schedule = (ms) => { if (gone) return; if (timer) clearTimeout(timer); timer = setTimeout(follow, ms); };
  // what the page shows: the records (redrawn when they change), and the statuses
  const layout = (d) => JSON.stringify([d.name, (d.records || []).map((r) => [r.record, r.type, r.name, r.value, r.priority])]);
  const statuses = (d) => JSON.stringify([d.status, d.capabilities, (d.records || []).map((r) => [r.status, r.problem])]);
  const summary = (d) => h("p", { id: "domain-summary" }, "Status: ", h("span", { id: "domain-status" }, badge(d.status)),
    d.capabilities ? [" · sending ", badge(d.capabilities.sending), " · receiving ", badge(d.capabilities.receiving)] : null);
  const recordStatus = (r) => h("div", {}, badge(r.status), r.problem ? h("div", { class: "muted" }, r.problem) : null);
  const verifyButton = (b, d) => { b.disabled = d.status === "pending"; b.textContent = b.disabled ? "Checking…" : "Verify DNS records"; return b; };

  // the statuses of the records on the page, in place
  function update(d) {
    shown = [layout(d), statuses(d), d.status];
    document.getElementById("domain-summary").replaceWith(summary(d));
    verifyButton(document.getElementById("verify"), d);
    box.querySelectorAll("td.record-status").forEach((td, i) => td.replaceChildren(recordStatus(d.records[i])));
  }

  function render(d) {
    shown = [layout(d), statuses(d), d.status];
    redraw(box,
      summary(d),
      h("p", {},
        verifyButton(h("button", { type: "button", id: "verify", onclick: verify }), d),
        " ",
        h("button", { type: "button", class: "danger", id: "domain-delete", onclick: async () => {
          if (!confirm("Delete the domain " + d.name + "?")) return;
          try { await del("/domains/" + encodeURIComponent(d.id)); announce("Deleted " + d.name); location.hash = "#/domains"; }
          catch (x) { showError(err, x); }
        } }, "Delete")),
      h("h2", {}, "DNS records to publish"),
      h("p", { class: "muted" }, "Names are relative to " + d.name + " (@ is the domain itself)."),
      table("DNS records of " + d.name, [
        { label: "Purpose", cell: (r) => r.record },
        { label: "Type", cell: (r) => r.type },
        { label: "Name", cell: (r) => h("span", { class: "mono" }, r.name), class: "mono" },
        { label: "Value", cell: (r) => h("div", {}, h("div", { class: "mono" }, r.priority !== undefined ? r.priority + " " + r.value : r.value), copyButton(r.value, r.record + " " + r.type + " value of " + r.name)) },
        { label: "Status", cell: recordStatus, class: "record-status" },
      ], d.records || [], "No records."));
  }

  const next = (d) => { schedule(soon ? 500 : d.status === "pending" ? 1500 : 5000); soon = false; };

  async function load() {
    const d = await get("/domains/" + encodeURIComponent(id));
    if (gone) return;
    page(main, d.name, err, h("p", {}, h("a", { href: "#/domains" }, "← All domains")), box, keys);
    render(d);
    try { renderKeys(d, await get(keyPath(d))); } catch (x) { showError(err, x); }
    next(d);
    return d;
  }

  async function follow() {
    timer = null;
    try {
      const d = await get("/domains/" + encodeURIComponent(id));
      if (gone) return;
      const before = shown[2];
      if (layout(d) !== shown[0]) render(d);
      else if (statuses(d) !== shown[1]) update(d);
      if (d.status !== before) announce(d.status === "pending" ? "Checking the DNS records" : "The domain is now " + d.status.replaceAll("_", " "));
      showError(err, null);
      next(d);
    } catch (x) {
      showError(err, x);
      schedule(5000);
    }
  }

  async function verify() {
    try {
      await post("/domains/" + encodeURIComponent(id) + "/verify");
      announce("Checking the DNS records");
      document.getElementById("verify").disabled = true;
      soon = true;
      schedule(500);
    } catch (x) { showError(err, x); }
  }

  page(main, "Domain", err, h("p", { class: "muted" }, "Loading…"));
  try { await load(); } catch (x) { showError(err, x); }
  return stop;
}
