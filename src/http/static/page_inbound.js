// page_inbound.js — mail received for the applications: the routes that send an address's mail
// here (POST/GET/PATCH/DELETE /inbound/routes), the received emails (GET /emails/receiving), and one
// received email: its envelope, headers, authentication results, attachments and body.
import { get, post, patch, del, listAll } from "/dashboard/api.js";
import { h, page, table, badge, when, field, errorBox, showError, announce } from "/dashboard/ui.js";
import { bodyFrame } from "/dashboard/page_emails.js";

const list = (v) => (Array.isArray(v) ? v.join(", ") : v || "");

export async function showInbound(main) {
  const err = errorBox();
  const address = h("input", { type: "text", required: true, placeholder: "hooks@example.org or *@reply.example.org", autocomplete: "off" });
  const mailbox = h("input", { type: "checkbox" });
  const routes = h("div", { id: "route-list" });
  const received = h("div", { id: "received-list" });
  async function loadRoutes() {
    const res = await get("/inbound/routes?limit=100");
    routes.replaceChildren(table("Inbound routes", [
      { label: "Address", cell: (r) => r.address },
      { label: "Also to the mailbox", cell: (r) => (r.mailbox ? "yes" : "no") },
      { label: "Created", cell: (r) => when(r.created_at) },
      { label: "", cell: (r) => h("div", { class: "row" },
        h("button", { type: "button", class: "secondary", "aria-label": (r.mailbox ? "Applications only" : "Also the mailbox") + " for " + r.address, onclick: async () => {
          try { await patch("/inbound/routes/" + encodeURIComponent(r.id), { mailbox: !r.mailbox }); await loadRoutes(); }
          catch (x) { showError(err, x); }
        } }, r.mailbox ? "Applications only" : "Also the mailbox"),
        h("button", { type: "button", class: "danger", "aria-label": "Remove the route " + r.address, onclick: async () => {
          if (!confirm("Remove the route " + r.address + "?")) return;
          try { await del("/inbound/routes/" + encodeURIComponent(r.id)); announce("Removed " + r.address); await loadRoutes(); }
          catch (x) { showError(err, x); }
        } }, "Remove")) },
    ], res.data || [], "No address is routed to the applications."));
  }
  async function loadReceived() {
    const res = await listAll("/emails/receiving", 3);
    received.replaceChildren(table("Received emails", [
      { label: "Subject", cell: (e) => h("a", { href: "#/inbound/" + encodeURIComponent(e.id) }, e.subject || "(no subject)") },
      { label: "From", cell: (e) => e.from },
      { label: "For", cell: (e) => list(e.received_for) },
      { label: "Attachments", cell: (e) => String((e.attachments || []).length) },
      { label: "Received", cell: (e) => when(e.created_at) },
    ], res.items, "Nothing received yet."));
  }
  const form = h("form", { class: "panel", id: "route-add", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const r = await post("/inbound/routes", { address: address.value.trim(), mailbox: mailbox.checked });
      announce("Routed " + r.address);
      address.value = ""; mailbox.checked = false;
      await loadRoutes();
    } catch (x) { showError(err, x); }
  } }, h("div", { class: "row" }, field("Address", address, "An address, or *@domain for all of a domain's."),
    h("div", { class: "field" }, h("label", {}, mailbox, " Deliver to the mailbox too"))),
    h("button", { type: "submit" }, "Add route"));
  page(main, "Inbound", err, form, h("h2", {}, "Routes"), routes, h("h2", {}, "Received"),
    h("p", {}, h("button", { type: "button", class: "secondary", id: "received-refresh", onclick: () => loadReceived().catch((x) => showError(err, x)) }, "Refresh")),
    received);
  try { await Promise.all([loadRoutes(), loadReceived()]); } catch (x) { showError(err, x); }
}

export async function showReceived(main, id) {
  const err = errorBox();
  page(main, "Received email", err, h("p", { class: "muted" }, "Loading…"));
  let e;
  try {
    e = await get("/emails/receiving/" + encodeURIComponent(id));
  } catch (x) {
    showError(err, x);
    return;
  }
  const auth = e.authentication;
  const facts = [["From", e.from], ["To", list(e.to)], ["Cc", list(e.cc)], ["Reply-To", list(e.reply_to)],
    ["Received for", list(e.received_for)], ["Subject", e.subject], ["Message-ID", e.message_id],
    ["In-Reply-To", e.in_reply_to], ["Received", when(e.created_at)], ["Id", e.id]].filter(([, v]) => v);
  const bodyBox = h("div", { id: "body-box" });
  let remote = false;
  const showBody = () => {
    if (e.html) {
      bodyBox.replaceChildren(bodyFrame(e.html, remote), h("p", {},
        h("button", { type: "button", class: "secondary", id: "remote-images", "aria-pressed": String(remote),
          onclick: () => { remote = !remote; showBody(); } }, remote ? "Block remote images" : "Load remote images")));
    } else {
      bodyBox.replaceChildren(e.text ? h("pre", { class: "text" }, e.text) : h("p", { class: "muted" }, "No text body."));
    }
  };
  showBody();
  page(main, e.subject || "(no subject)", err,
    h("p", {}, h("a", { href: "#/inbound" }, "← Inbound")),
    h("section", { class: "panel", "aria-labelledby": "env-h" }, h("h2", { id: "env-h" }, "Envelope"),
      h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      auth ? h("p", {}, "SPF ", badge(auth.spf || "none"), " DKIM ", badge(auth.dkim || "none"), " DMARC ", badge(auth.dmarc || "none")) : null),
    h("details", { id: "received-headers" }, h("summary", {}, "Header fields"),
      h("dl", { class: "facts" }, Object.entries(e.headers || {}).map(([k, v]) => [h("dt", {}, k), h("dd", { class: "mono" }, v)]))),
    (e.attachments || []).length ? [h("h2", {}, "Attachments"), table("Attachments", [
      { label: "Name", cell: (a) => a.filename || "(none)" },
      { label: "Type", cell: (a) => a.content_type },
      { label: "Size", cell: (a) => String(a.size) },
    ], e.attachments)] : null,
    h("h2", {}, "Body"), bodyBox,
    e.html && e.text ? h("details", {}, h("summary", {}, "Text version"), h("pre", { class: "text" }, e.text)) : null,
    e.raw && e.raw.download_url ? h("p", {}, h("a", { href: e.raw.download_url, rel: "noreferrer" }, "The message as received (.eml)")) : null);
}
