// page_emails.js — the emails sent through the API and submission: a list that the server filters
// (GET /emails with status, domain, recipient, tag, q, since and until) a page of 50 at a time,
// Older and Newer walking it, the page on screen refreshed every 3 s while it is open (its emails'
// statuses move on), and one email's page: its envelope and header fields, its recipients'
// timelines with every attempt and the receiver's reply, and its body in a sandboxed frame.
import { get } from "/dashboard/api.js";
import { h, page, table, badge, when, field, errorBox, showError, announce, redraw } from "/dashboard/ui.js";

const STATES = ["", "queued", "scheduled", "sent", "delivered", "delivery_delayed", "bounced", "complained",
  "failed", "canceled", "suppressed"];
const PAGE = 50;

const list = (v) => (Array.isArray(v) ? v.join(", ") : v || "");
const tagText = (tags) => (tags || []).map((t) => t.name + ":" + t.value).join(", ");
// a date input's day as an instant: its local midnight (until: the next one, so the day counts)
const dayStart = (value, next) => { const d = new Date(value + "T00:00"); if (next) d.setDate(d.getDate() + 1); return d.toISOString(); };

export async function showEmails(main) {
  const err = errorBox();
  const status = h("select", {}, STATES.map((s) => h("option", { value: s }, s ? s.replaceAll("_", " ") : "any")));
  const domain = h("input", { type: "text", placeholder: "example.org", autocomplete: "off", spellcheck: "false" });
  const recipient = h("input", { type: "email", placeholder: "someone@example.net", autocomplete: "off" });
  const tag = h("input", { type: "text", placeholder: "name or name:value", autocomplete: "off", spellcheck: "false" });
  const search = h("input", { type: "search", placeholder: "address, subject or id" });
  const since = h("input", { type: "date" });
  const until = h("input", { type: "date" });
  const out = h("div", { id: "email-list", "aria-live": "polite" });
  const newer = h("button", { type: "button", class: "secondary", id: "newer", disabled: true }, "← Newer");
  const older = h("button", { type: "button", class: "secondary", id: "older", disabled: true }, "Older →");
  // the cursors of the pages before this one ("" for the first): Older pushes, Newer pops
  let cursors = [""], shown = null, seq = 0;

  function query() {
    const q = new URLSearchParams({ limit: String(PAGE) });
    const add = (k, v) => { if (v) q.set(k, v); };
    add("status", status.value);
    add("domain", domain.value.trim());
    add("recipient", recipient.value.trim());
    add("tag", tag.value.trim());
    add("q", search.value.trim());
    if (since.value) q.set("since", dayStart(since.value, false));
    if (until.value) q.set("until", dayStart(until.value, true));
    add("after", cursors[cursors.length - 1]);
    return q;
  }
  const filtered = () => Boolean(status.value || domain.value.trim() || recipient.value.trim() || tag.value.trim() ||
    search.value.trim() || since.value || until.value);

  async function load() {
    const mine = ++seq; // an answer to an older query is dropped
    try {
      const res = await get("/emails?" + query());
      if (mine !== seq) return;
      const emails = res.data || [];
      showError(err, null);
      newer.disabled = cursors.length === 1;
      older.disabled = !res.has_more;
      older.dataset.after = emails.length ? emails[emails.length - 1].id : "";
      const empty = filtered() || cursors.length > 1 ? "No email matches." : "No email has been sent yet.";
      const seen = JSON.stringify([empty, emails.map((e) => [e.id, e.last_event])]);
      if (seen === shown) return; // nothing changed: the table (and the focus in it) stays
      shown = seen;
      redraw(out, table("Emails", [
        { label: "Subject", cell: (e) => h("a", { href: "#/emails/" + encodeURIComponent(e.id) }, e.subject || "(no subject)") },
        { label: "To", cell: (e) => list(e.to) },
        { label: "From", cell: (e) => e.from },
        { label: "Tags", cell: (e) => tagText(e.tags) },
        { label: "Status", cell: (e) => badge(e.last_event) },
        { label: "Created", cell: (e) => when(e.created_at) },
      ], emails, empty));
    } catch (x) {
      if (mine === seq) showError(err, x);
    }
  }

  // a new filter starts again from the newest
  let typing = null;
  const restart = () => { clearTimeout(typing); cursors = [""]; load(); };
  const debounced = () => { clearTimeout(typing); typing = setTimeout(restart, 300); };
  for (const el of [status, since, until]) el.addEventListener("change", restart);
  for (const el of [domain, recipient, tag, search]) el.addEventListener("input", debounced);
  // a button that is disabled at the end of the list hands the focus to the other one
  const walk = async (from, to, what) => { await load(); announce(what); if (from.disabled) to.focus(); };
  older.addEventListener("click", () => { cursors.push(older.dataset.after); walk(older, newer, "Older emails"); });
  newer.addEventListener("click", () => { cursors.pop(); walk(newer, older, "Newer emails"); });
  page(main, "Emails", err,
    h("form", { class: "row", role: "search", onsubmit: (e) => { e.preventDefault(); restart(); } },
      field("Status", status), field("From domain", domain), field("Recipient", recipient), field("Tag", tag),
      field("Search", search), field("Since", since), field("Until", until),
      h("button", { type: "button", class: "secondary", id: "refresh", onclick: async () => { await load(); announce("List refreshed"); } }, "Refresh")),
    out, h("p", { class: "row" }, newer, older));
  await load();
  const timer = setInterval(load, 3000);
  return () => { clearInterval(timer); clearTimeout(typing); };
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
    e.headers && e.headers.length ? h("details", { id: "sent-headers" }, h("summary", {}, "Header fields as sent"),
      h("dl", { class: "facts" }, e.headers.map((f) => [h("dt", {}, f.name), h("dd", { class: "mono" }, f.value)]))) : null,
    h("h2", {}, "Recipients"), timelines.length ? timelines : h("p", { class: "muted" }, "No recipients recorded."),
    h("h2", {}, "Body"), bodyBox,
    e.html && e.text ? h("details", {}, h("summary", {}, "Text version"), h("pre", { class: "text" }, e.text)) : null);
}
