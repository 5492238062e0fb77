// page_queue.js — the queue: every message still waiting, each recipient's state, attempts, next
// attempt and last error; retry every deferred recipient now, or delete a message.
import { get, post, del } from "/dashboard/api.js";
import { h, page, table, badge, when, errorBox, showError, announce } from "/dashboard/ui.js";

function size(n) {
  return n < 1024 ? n + " B" : n < 1048576 ? (n / 1024).toFixed(1) + " KiB" : (n / 1048576).toFixed(1) + " MiB";
}

export async function showQueue(main) {
  const err = errorBox();
  const out = h("div", { id: "queue-list" });
  async function load() {
    const res = await get("/dashboard/queue");
    out.replaceChildren(table("Queued messages", [
      { label: "Id", cell: (m) => m.id, class: "mono" },
      { label: "Sender", cell: (m) => m.sender || "<>" },
      { label: "Recipients", cell: (m) => h("ul", {}, m.recipients.map((r) => h("li", {}, r.address, " ", badge(r.state),
        r.attempts ? " · " + r.attempts + " attempts" : "", r.next_attempt ? " · next " + when(r.next_attempt) : "",
        r.last_error ? h("div", { class: "muted" }, r.last_error) : null))) },
      { label: "Arrived", cell: (m) => when(m.arrival) },
      { label: "Size", cell: (m) => size(m.size) },
      { label: "", cell: (m) => h("button", { type: "button", class: "danger", "aria-label": "Delete message " + m.id, onclick: async () => {
        if (!confirm("Delete message " + m.id + "? It will not be delivered.")) return;
        try { await del("/dashboard/queue/" + encodeURIComponent(m.id)); announce("Deleted " + m.id); await load(); }
        catch (x) { showError(err, x); }
      } }, "Delete") },
    ], res.data || [], "The queue is empty."), res.has_more ? h("p", { class: "muted" }, "Only the first 500 are shown.") : null);
  }
  const retry = h("button", { type: "button", id: "queue-retry", onclick: async () => {
    try { const r = await post("/dashboard/queue/retry"); announce(r.retried + " recipients will be tried now"); await load(); }
    catch (x) { showError(err, x); }
  } }, "Retry all now");
  page(main, "Queue", err, h("p", {}, retry, " ", h("button", { type: "button", class: "secondary", onclick: () => load().catch((x) => showError(err, x)) }, "Refresh")), out);
  try { await load(); } catch (x) { showError(err, x); }
}
