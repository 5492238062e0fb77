// page_suppressions.js — the suppression list: search, add an address (for one domain or all),
// remove one, and import a CSV file of addresses (the first column; a header line is skipped).
import { get, post, del, listAll } from "/dashboard/api.js";
import { h, page, table, when, field, errorBox, showError, announce } from "/dashboard/ui.js";

// The addresses of a CSV text: the first field of each line, quotes removed; lines without an @
// (a header) are skipped.
export function csvAddresses(text) {
  const out = [];
  for (const line of text.split(/\r?\n/)) {
    let first = line.split(",")[0].trim();
    if (first.startsWith('"') && first.endsWith('"') && first.length >= 2) first = first.slice(1, -1).trim();
    if (first.includes("@")) out.push(first);
  }
  return [...new Set(out)];
}

export async function showSuppressions(main) {
  const err = errorBox();
  const search = h("input", { type: "search", placeholder: "address or domain" });
  const email = h("input", { type: "email", required: true, autocomplete: "off" });
  const domain = h("input", { type: "text", placeholder: "every domain", autocomplete: "off" });
  const file = h("input", { type: "file", accept: ".csv,text/csv,text/plain" });
  const out = h("div", { id: "suppression-list" });
  let all = [];
  function render() {
    const q = search.value.trim().toLowerCase();
    const shown = all.filter((s) => !q || (s.email + " " + (s.domain || "")).toLowerCase().includes(q));
    out.replaceChildren(table("Suppressed addresses", [
      { label: "Address", cell: (s) => s.email },
      { label: "Domain", cell: (s) => s.domain || "all" },
      { label: "Origin", cell: (s) => s.origin },
      { label: "Since", cell: (s) => when(s.created_at) },
      { label: "", cell: (s) => h("button", { type: "button", class: "danger", "aria-label": "Remove " + s.email, onclick: async () => {
        try { await del("/suppressions/" + encodeURIComponent(s.id)); announce("Removed " + s.email); await load(); }
        catch (x) { showError(err, x); }
      } }, "Remove") },
    ], shown, all.length ? "No address matches." : "No address is suppressed."));
  }
  async function load() {
    all = (await listAll("/suppressions", 20)).items;
    render();
  }
  search.addEventListener("input", render);
  const add = h("form", { class: "panel", id: "suppression-add", onsubmit: async (e) => {
    e.preventDefault();
    const body = { email: email.value.trim() };
    if (domain.value.trim()) body.domain = domain.value.trim();
    try { await post("/suppressions", body); announce("Suppressed " + body.email); email.value = ""; await load(); }
    catch (x) { showError(err, x); }
  } }, h("div", { class: "row" }, field("Address", email), field("Domain", domain, "Empty: for every sending domain.")),
    h("button", { type: "submit" }, "Suppress"));
  const importForm = h("form", { class: "panel", id: "suppression-import", onsubmit: async (e) => {
    e.preventDefault();
    if (!file.files.length) return;
    try {
      const emails = csvAddresses(await file.files[0].text());
      let done = 0;
      for (let i = 0; i < emails.length; i += 1000) {
        const body = { emails: emails.slice(i, i + 1000) };
        if (domain.value.trim()) body.domain = domain.value.trim();
        await post("/suppressions/batch/add", body);
        done += body.emails.length;
      }
      announce("Imported " + done + " addresses");
      await load();
    } catch (x) { showError(err, x); }
  } }, field("CSV file", file, "One address per line in the first column."), h("button", { type: "submit" }, "Import"));
  page(main, "Suppressions", err, add, importForm, h("div", { class: "row", role: "search" }, field("Search", search)), out);
  try { await load(); } catch (x) { showError(err, x); }
}
