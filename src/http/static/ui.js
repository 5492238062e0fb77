// ui.js — building the pages: elements from data with textContent only (nothing an email or an API
// answer holds is ever parsed as HTML here), tables, forms, badges, announcements for screen readers.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function announce(message) {
  const s = document.getElementById("status");
  s.textContent = "";
  setTimeout(() => { s.textContent = message; }, 50);
}

export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleString();
}

const GOOD = new Set(["delivered", "verified", "enabled", "sent", "full_access", "active", "success"]);
const BAD = new Set(["bounced", "failed", "complained", "suppressed", "disabled", "canceled", "temporary_failure"]);
export function badge(text) {
  const t = String(text || "");
  const kind = GOOD.has(t) ? "ok" : BAD.has(t) ? "bad" : "warn";
  return h("span", { class: "badge " + kind }, t.replaceAll("_", " "));
}

// columns: [{label, cell: (row) => Node|string, class?}]
export function table(caption, columns, rows, empty) {
  if (rows.length === 0) return h("p", { class: "muted" }, empty || "Nothing here yet.");
  return h("div", { class: "table-wrap" },
    h("table", {},
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c.label)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, columns.map((c) => h("td", { class: c.class }, c.cell(r))))))));
}

let fieldSeq = 0;
export function field(label, input, hint) {
  const id = input.id || "f" + (++fieldSeq);
  input.id = id;
  const parts = [h("label", { for: id }, label), input];
  if (hint) {
    const hid = id + "-hint";
    input.setAttribute("aria-describedby", hid);
    parts.push(h("div", { class: "muted", id: hid }, hint));
  }
  return h("div", { class: "field" }, parts);
}

export function errorBox() {
  return h("p", { class: "error", role: "alert" });
}

export function showError(box, err) {
  box.textContent = err ? (err.message || String(err)) : "";
}

export function copyButton(value, what) {
  return h("button", {
    type: "button", class: "secondary", "aria-label": "Copy " + what,
    onclick: async (e) => {
      try {
        await navigator.clipboard.writeText(value);
        announce("Copied " + what);
        e.target.textContent = "Copied";
      } catch {
        announce("Copying is not allowed here; select the text instead");
      }
    },
  }, "Copy");
}

// Replaces box's content; the keyboard focus, when it was in there, goes to the new control with
// the same id, link or label (a list redrawn by its timer does not throw the user out of it).
export function redraw(box, ...children) {
  const a = document.activeElement;
  const k = a && box.contains(a) ? ["id", "href", "aria-label"].find((n) => a.getAttribute(n)) : null;
  const v = k && a.getAttribute(k);
  box.replaceChildren(...children);
  if (k) {
    const again = [...box.querySelectorAll("[" + k + "]")].find((el) => el.getAttribute(k) === v);
    if (again) again.focus();
  }
}

// A page's heading, focused so that keyboard and screen-reader users land on the new content.
export function page(main, title, ...children) {
  const h1 = h("h1", { tabindex: "-1" }, title);
  main.replaceChildren(h1, ...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  document.title = title + " — mailwerk";
  h1.focus();
  return h1;
}
