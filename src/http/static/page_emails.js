// page_emails.js — the emails sent through the API and submission: a list to filter and search
// (GET /emails, refreshed while it is open), and one email's page: its envelope, its recipients'
// timelines with every attempt and the receiver's reply, and its body in a sandboxed frame.
import { get, listAll } from "/dashboard/api.js";
import { h, page, table, badge, when, field, errorBox, showError, announce } from "/dashboard/ui.js";

const STATES = ["", "queued", "scheduled", "sent", "delivered", "delivery_delayed", "bounced", "complained",
  "failed", "canceled", "suppressed", "unsubscribed"];

const list = (v) => (Array.isArray(v) ? v.join(", ") : v || "");
const domainOf = (from) => { const m = /@([^>\s]+)>?\s*$/.exec(from || ""); return m ? m[1].toLowerCase() : ""; };

export async function showEmails(main) {
  const err = errorBox();
  const status = h("select", {}, STATES.map((s) => h("option", { value: s }, s ? s.replaceAll("_", " ") : "any")));
  const search = h("input", { type: "search", placeholder: "address, subject or id" });
  const domain = h("select", {}, h("option", { value: "" }, "any"));
  const since = h("input", { type: "date" });
  const out = h("div", { id: "email-list", "aria-live": "polite" });
  let emails = [];

  function render() {
    const q = search.value.trim().toLowerCase();
    const from = since.value ? Date.parse(since.value) : 0;
    const shown = emails.filter((e) =>
      (!status.value || e.last_event === status.value) &&
      (!domain.value || domainOf(e.from) === domain.value) &&
      (!from || Date.parse(e.created_at) >= from) &&
      (!q || [e.id, e.from, e.subject, list(e.to), list(e.cc), list(e.bcc)].join(" ").toLowerCase().includes(q)));
    out.replaceChildren(table("Emails", [
      { label: "Subject", cell: (e) => h("a", { href: "#/emails/" + encodeURIComponent(e.id) }, e.subject || "(no subject)") },
      { label: "To", cell: (e) => list(e.to) },
      { label: "From", cell: (e) => e.from },
      { label: "Status", cell: (e) => badge(e.last_event) },
      { label: "Created", cell: (e) => when(e.created_at) },
    ], shown, emails.length ? "No email matches." : "No email has been sent yet."));
  }

  async function load() {
    try {
      emails = (await listAll("/emails", 5)).items;
      const domains = [...new Set(emails.map((e) => domainOf(e.from)).filter(Boolean))].sort();
      const keep = domain.value;
      domain.replaceChildren(h("option", { value: "" }, "any"), ...domains.map((d) => h("option", { value: d }, d)));
      domain.value = domains.includes(keep) ? keep : "";
      showError(err, null);
      render();
    } catch (x) {
      showError(err, x);
    }
  }

  for (const el of [status, domain, since]) el.addEventListener("change", render);
  search.addEventListener("input", render);
  page(main, "Emails", err,
    h("form", { class: "row", role: "search", onsubmit: (e) => { e.preventDefault(); render(); } },
      field("Status", status), field("From domain", domain), field("Since", since), field("Search", search),
      h("button", { type: "button", class: "secondary", id: "refresh", onclick: async () => { await load(); announce("List refreshed"); } }, "Refresh")),
    out);
  await load();
  const timer = setInterval(load, 3000); // the list follows the mail while it is open
  return () => clearInterval(timer);
}

// The email's HTML in a document of its own: a policy that lets no script run and loads nothing
// from elsewhere (remote images only when asked), inside a frame sandboxed without allow-scripts
// and without allow-same-origin, so the email can neither run code nor reach the dashboard.
export function bodyFrame(html, remoteImages) {
  const policy = "default-src 'none'; style-src 'unsafe-inline'; font-src data:; img-src data:" + (remoteImages ? " https:" : "");
  const frame = h("iframe", {
    class: "body", id: "email-body", title: "The email's HTML body",
    sandbox: "allow-popups allow-popups-to-escape-sandbox", referrerpolicy: "no-referrer",
  });
  frame.srcdoc = '<!doctype html><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="' + policy +
    '"><base target="_blank">' + html;
  return frame;
}

function eventDetails(ev) {
  const rest = Object.entries(ev).filter(([k]) => k !== "type" && k !== "created_at");
  if (!rest.length) return null;
  return h("dl", { class: "facts" }, rest.map(([k, v]) => [h("dt", {}, k.replaceAll("_", " ")),
    h("dd", { class: "mono" }, typeof v === "object" ? JSON.stringify(v) : String(v))]));
}

export async function showEmail(main, id) {
  const err = errorBox();
  page(main, "Email", err, h("p", { class: "muted" }, "Loading…"));
  let e;
  try {
    e = await get("/emails/" + encodeURIComponent(id));
  } catch (x) {
    showError(err, x);
    return;
  }
  const facts = [["From", e.from], ["To", list(e.to)], ["Cc", list(e.cc)], ["Bcc", list(e.bcc)], ["Reply-To", list(e.reply_to)],
    ["Subject", e.subject], ["Message-ID", e.message_id], ["Created", when(e.created_at)], ["Scheduled", when(e.scheduled_at)],
    ["Tags", (e.tags || []).map((t) => t.name + "=" + t.value).join(", ")], ["Id", e.id]].filter(([, v]) => v);
  const timelines = (e.recipients || []).map((r) => h("section", { class: "panel recipient" },
    h("h3", {}, r.email, " ", badge(r.state)),
    h("ol", { class: "timeline" }, (r.events || []).map((ev) => h("li", { class: "event", "data-type": ev.type },
      h("div", {}, badge(ev.type), " ", h("time", { datetime: ev.created_at }, when(ev.created_at))), eventDetails(ev))))));
  const bodyBox = h("div", { id: "body-box" });
  let remote = false;
  const showBody = () => {
    if (e.html) {
      bodyBox.replaceChildren(bodyFrame(e.html, remote), h("p", {},
        h("button", { type: "button", class: "secondary", id: "remote-images", "aria-pressed": String(remote),
          onclick: () => { remote = !remote; showBody(); announce(remote ? "Remote images shown" : "Remote images blocked"); } },
        remote ? "Block remote images" : "Load remote images")));
    } else {
      bodyBox.replaceChildren(e.text ? h("pre", { class: "text" }, e.text) : h("p", { class: "muted" }, "No body is kept."));
    }
  };
  showBody();
  page(main, e.subject || "(no subject)", err,
    h("p", {}, h("a", { href: "#/emails" }, "← All emails"), " ", badge(e.last_event)),
    h("section", { class: "panel", "aria-labelledby": "env-h" }, h("h2", { id: "env-h" }, "Envelope and headers"),
      h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))),
    h("h2", {}, "Recipients"), timelines.length ? timelines : h("p", { class: "muted" }, "No recipients recorded."),
    h("h2", {}, "Body"), bodyBox,
    e.html && e.text ? h("details", {}, h("summary", {}, "Text version"), h("pre", { class: "text" }, e.text)) : null);
}
