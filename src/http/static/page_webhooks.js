// page_webhooks.js — webhook endpoints: the list, adding one for chosen events (its signing secret
// is shown once), switching one on or off, removing it, and its recent deliveries with the
// endpoint's answers, and posting one again (the API's /webhooks/{id}/events).
import { get, post, patch, del } from "/dashboard/api.js";
import { h, page, table, badge, when, field, errorBox, showError, announce, copyButton } from "/dashboard/ui.js";

const EVENTS = ["email.sent", "email.delivered", "email.delivery_delayed", "email.bounced", "email.complained",
  "email.failed", "email.suppressed", "email.scheduled", "email.received", "domain.created", "domain.updated", "domain.deleted"];

export async function showWebhooks(main) {
  const err = errorBox();
  const endpoint = h("input", { type: "url", required: true, placeholder: "https://app.example.org/hooks/mail", autocomplete: "off" });
  const boxes = EVENTS.map((ev) => h("input", { type: "checkbox", value: ev, checked: ev.startsWith("email.") && ev !== "email.received" }));
  const made = h("div", { id: "webhook-made" });
  const out = h("div", { id: "webhook-list" });
  const log = h("section", { id: "webhook-deliveries", "aria-live": "polite" });
  const base = (w) => "/webhooks/" + encodeURIComponent(w.id) + "/events";
  async function showAttempts(w, ev, box) {
    try {
      const [detail, attempts] = await Promise.all([get(base(w) + "/" + encodeURIComponent(ev.id)),
        get(base(w) + "/" + encodeURIComponent(ev.id) + "/attempts")]);
      const emailId = detail.payload && detail.payload.data && detail.payload.data.email_id;
      box.replaceChildren(
        emailId ? h("p", {}, "Email ", h("a", { href: "#/emails/" + encodeURIComponent(emailId) }, emailId)) : null,
        detail.next_attempt_at ? h("p", {}, "Next attempt " + when(detail.next_attempt_at)) : null,
        table("Attempts of " + ev.id, [
          { label: "Sent", cell: (a) => when(a.sent_at) },
          { label: "Status", cell: (a) => a.http_status_code ? "HTTP " + a.http_status_code : "no answer" },
          { label: "Response", cell: (a) => a.response, class: "mono" },
        ], attempts.data || [], "Not tried yet."));
    } catch (x) { showError(err, x); }
  }
  async function showDeliveries(w) {
    try {
      const res = await get(base(w) + "?limit=50");
      log.replaceChildren(h("h2", { tabindex: "-1" }, "Deliveries to " + w.endpoint),
        h("p", {}, h("button", { type: "button", class: "secondary", onclick: () => showDeliveries(w) }, "Refresh deliveries")),
        table("Deliveries to " + w.endpoint, [
          { label: "Event", cell: (ev) => ev.type },
          { label: "Status", cell: (ev) => badge(ev.status) },
          { label: "Created", cell: (ev) => when(ev.created_at) },
          { label: "", cell: (ev) => {
            const box = h("div", { class: "attempts" });
            return h("div", {},
              h("button", { type: "button", class: "secondary", "aria-label": "Attempts of " + ev.type + " " + ev.id, onclick: () => showAttempts(w, ev, box) }, "Attempts"),
              " ",
              h("button", { type: "button", class: "secondary", "aria-label": "Replay " + ev.type + " " + ev.id, onclick: async () => {
                try { await post(base(w) + "/" + encodeURIComponent(ev.id) + "/replay"); announce("Posted again"); await showDeliveries(w); }
                catch (x) { showError(err, x); }
              } }, "Replay"),
              box);
          } },
        ], res.data || [], "Nothing has been sent to it yet."));
      log.querySelector("h2").focus();
    } catch (x) { showError(err, x); }
  }
  async function load() {
    const res = await get("/webhooks?limit=100");
    out.replaceChildren(table("Webhooks", [
      { label: "Endpoint", cell: (w) => h("span", { class: "mono" }, w.endpoint), class: "mono" },
      { label: "Events", cell: (w) => (w.events || []).join(", ") },
      { label: "Status", cell: (w) => badge(w.status) },
      { label: "Created", cell: (w) => when(w.created_at) },
      { label: "", cell: (w) => h("div", { class: "row" },
        h("button", { type: "button", class: "secondary", "aria-label": "Deliveries to " + w.endpoint, onclick: () => showDeliveries(w) }, "Deliveries"),
        h("button", { type: "button", class: "secondary", "aria-label": (w.status === "enabled" ? "Disable " : "Enable ") + w.endpoint, onclick: async () => {
          try { await patch("/webhooks/" + encodeURIComponent(w.id), { status: w.status === "enabled" ? "disabled" : "enabled" }); await load(); }
          catch (x) { showError(err, x); }
        } }, w.status === "enabled" ? "Disable" : "Enable"),
        h("button", { type: "button", class: "danger", "aria-label": "Remove " + w.endpoint, onclick: async () => {
          if (!confirm("Remove the webhook " + w.endpoint + "?")) return;
          try { await del("/webhooks/" + encodeURIComponent(w.id)); announce("Removed"); await load(); }
          catch (x) { showError(err, x); }
        } }, "Remove")) },
    ], res.data || [], "No webhooks yet."));
  }
  const form = h("form", { class: "panel", id: "webhook-add", onsubmit: async (e) => {
    e.preventDefault();
    const events = boxes.filter((b) => b.checked).map((b) => b.value);
    try {
      const w = await post("/webhooks", { endpoint: endpoint.value.trim(), events });
      made.replaceChildren(h("div", { class: "panel", role: "status" },
        h("p", {}, "Signing secret — copy it now, it is not shown again:"),
        h("div", { class: "secret" }, h("code", { class: "mono", id: "webhook-secret" }, w.signing_secret), copyButton(w.signing_secret, "the signing secret"))));
      endpoint.value = "";
      await load();
    } catch (x) { showError(err, x); }
  } }, field("Endpoint URL", endpoint),
    h("fieldset", {}, h("legend", {}, "Events"), boxes.map((b) => h("label", {}, b, b.value))),
    h("button", { type: "submit" }, "Add webhook"));
  page(main, "Webhooks", err, form, made, out, log);
  try { await load(); } catch (x) { showError(err, x); }
}
