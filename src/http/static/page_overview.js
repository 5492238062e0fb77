// page_overview.js — what the server is doing: the queue and its oldest deferred recipient, what
// happened to the mail of the last 24 hours and 30 days (GET /stats: totals and one column per
// hour or day), the TLS certificate (GET /server), and warnings (domains that do not verify, a
// certificate that expires within 21 days, webhooks whose endpoint fails).
import { get } from "/dashboard/api.js";
import { h, page, when, errorBox, showError } from "/dashboard/ui.js";

const CERT_WARN_DAYS = 21; // Let's Encrypt renews 30 days ahead: 21 left means renewal has failed

const KINDS = [
  ["sent", "Sent"], ["delivered", "Delivered"], ["bounced", "Bounced"],
  ["complained", "Complained"], ["delivery_delayed", "Deferred"],
];

function card(label, value, id, detail) {
  return h("div", { class: "card", id }, h("div", { class: "value" }, String(value)), h("div", { class: "label" }, label),
    detail ? h("div", { class: "muted" }, detail) : null);
}

// Totals as bars with their numbers, and the series as columns (one per hour or day; their
// heights are the mail sent, the bar's title says the counts).
function chart(title, stats, id) {
  const totals = stats.totals || {};
  const max = Math.max(1, ...KINDS.map(([k]) => totals[k] || 0));
  const peak = Math.max(1, ...(stats.series || []).map((b) => b.sent));
  return h("section", { class: "panel", id, "aria-labelledby": id + "-h" },
    h("h2", { id: id + "-h" }, title),
    h("div", { class: "bars" }, KINDS.map(([k, label]) => [
      h("span", {}, label),
      h("div", { class: "bar", "data-width": String(Math.round(100 * (totals[k] || 0) / max)), "aria-hidden": "true" }),
      h("span", { "data-kind": k }, String(totals[k] || 0)),
    ])),
    h("div", { class: "columns", "aria-hidden": "true" }, (stats.series || []).map((b) =>
      h("div", { class: "column", title: when(b.start) + ": " + b.sent + " sent, " + b.delivered + " delivered, " + b.bounced + " bounced",
        "data-height": String(Math.round(100 * b.sent / peak)) }))),
    h("p", { class: "muted" }, "One column per " + (stats.bucket || "hour") + " since " + when(stats.since) + "."));
}

export async function showOverview(main) {
  const err = errorBox();
  page(main, "Overview", err, h("p", { class: "muted" }, "Loading…"));
  try {
    const [day, month, domains, webhooks, server] = await Promise.all([
      get("/stats?window=24h"), get("/stats?window=30d"), get("/domains?limit=100"), get("/webhooks?limit=100"), get("/server"),
    ]);
    const cert = server.certificate;
    const certName = cert ? cert.subject || (cert.names || [])[0] || server.hostname : "";
    // a webhook whose recent events were given up on, or are being retried
    const hooks = (webhooks.data || []).filter((w) => w.status === "enabled");
    const recent = await Promise.all(hooks.map((w) => get("/webhooks/" + encodeURIComponent(w.id) + "/events?limit=20")
      .then((r) => r.data || [], () => [])));
    const failingHooks = hooks.filter((w, i) => recent[i].some((ev) => ev.status === "failed" || ev.status === "attempting"));
    const failing = (domains.data || []).filter((d) => d.status === "failed" || d.status === "partially_verified");
    const warnings = failing.map((d) => h("li", {}, h("a", { href: "#/domains/" + encodeURIComponent(d.id) }, d.name),
      " does not verify (" + d.status.replaceAll("_", " ") + ")."))
      .concat(cert && cert.expires_in_days <= CERT_WARN_DAYS ? [h("li", { id: "cert-warning" },
        cert.expired ? "The TLS certificate for " + certName + " has expired (" + when(cert.not_after) + "): clients refuse TLS or mail goes unencrypted."
          : "The TLS certificate for " + certName + " expires in " + cert.expires_in_days + (cert.expires_in_days === 1 ? " day" : " days") +
            " (" + when(cert.not_after) + "): renew it and reload mailwerk.")] : [])
      .concat(failingHooks.map((w) => h("li", {}, "The webhook ", h("a", { href: "#/webhooks" }, w.endpoint),
        " is failing: its endpoint did not take recent events.")));
    const q = day.queue || {};
    const od = q.oldest_deferred;
    page(main, "Overview", err,
      h("div", { class: "cards" },
        card("Messages in the queue", q.messages ?? "?", "queue-depth", q.oldest_arrival ? "oldest since " + when(q.oldest_arrival) : null),
        card("Deferred recipients", q.deferred ?? "?", "queue-deferred",
          od ? "oldest: " + od.recipient + ", next try " + when(od.next_attempt) + (od.last_error ? " (" + od.last_error + ")" : "") : null),
        card("Received in the last 24 h", day.received ?? 0, "received-24h"),
        card("TLS certificate", cert ? certName : "none", "tls-certificate",
          cert ? (cert.expired ? "expired " : "valid until ") + when(cert.not_after) + (cert.issuer && cert.issuer !== certName ? ", from " + cert.issuer : "") : "no certificate is loaded")),
      chart("Last 24 hours", day, "chart-24h"),
      chart("Last 30 days", month, "chart-30d"),
      h("section", { "aria-labelledby": "warn-h" }, h("h2", { id: "warn-h" }, "Warnings"),
        warnings.length ? h("ul", {}, warnings) : h("p", { class: "muted" }, "None.")));
    // the bars' and columns' sizes, once they are in the page
    for (const bar of main.querySelectorAll(".bar")) bar.style.width = bar.dataset.width + "%";
    for (const col of main.querySelectorAll(".column")) col.style.height = Math.max(2, Number(col.dataset.height)) + "%";
  } catch (x) {
    showError(err, x);
  }
}
