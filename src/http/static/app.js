// app.js — the single-page application: who is signed in, and the hash routes (#/overview,
// #/emails, #/emails/ID, #/domains, #/domains/ID, #/api-keys, #/webhooks, #/suppressions, #/queue, #/inbound,
// #/inbound/ID, #/accounts).
import { request, setCsrfToken, whenSignedOut } from "/dashboard/api.js";
import { showLogin } from "/dashboard/page_login.js";
import { showOverview } from "/dashboard/page_overview.js";
import { showEmails, showEmail } from "/dashboard/page_emails.js";
import { showDomains, showDomain } from "/dashboard/page_domains.js";
import { showKeys } from "/dashboard/page_keys.js";
import { showWebhooks } from "/dashboard/page_webhooks.js";
import { showSuppressions } from "/dashboard/page_suppressions.js";
import { showQueue } from "/dashboard/page_queue.js";
import { showInbound, showReceived } from "/dashboard/page_inbound.js";
import { showUsers } from "/dashboard/page_users.js";

const main = document.getElementById("main");
let session = null;
let leave = null; // what the current page stops (timers) when another one opens
let shown = 0; // which route() call the page on screen belongs to

const routes = [
  [/^#\/overview$/, () => showOverview(main)],
  [/^#\/emails$/, () => showEmails(main)],
  [/^#\/emails\/([^/]+)$/, (m) => showEmail(main, decodeURIComponent(m[1]))],
  [/^#\/domains$/, () => showDomains(main)],
  [/^#\/domains\/([^/]+)$/, (m) => showDomain(main, decodeURIComponent(m[1]))],
  [/^#\/api-keys$/, () => showKeys(main)],
  [/^#\/webhooks$/, () => showWebhooks(main)],
  [/^#\/suppressions$/, () => showSuppressions(main)],
  [/^#\/queue$/, () => showQueue(main)],
  [/^#\/inbound$/, () => showInbound(main)],
  [/^#\/accounts$/, () => showUsers(main)],
  [/^#\/inbound\/([^/]+)$/, (m) => showReceived(main, decodeURIComponent(m[1]))],
];

function signedIn(s) {
  session = s;
  setCsrfToken(s ? s.csrf_token : "");
  document.getElementById("nav").hidden = !s;
  document.getElementById("who").hidden = !s;
  document.getElementById("who-name").textContent = s ? s.user : "";
}

function markNav() {
  const base = location.hash.split("/").slice(0, 2).join("/");
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.getAttribute("href") === base) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

async function route() {
  const mine = ++shown;
  if (leave) { leave(); leave = null; }
  if (!session) {
    showLogin(main, (s) => { signedIn(s); if (!location.hash.startsWith("#/") || location.hash === "#/login") location.hash = "#/overview"; else route(); });
    return;
  }
  const hash = location.hash.startsWith("#/") && location.hash !== "#/login" ? location.hash : "#/overview";
  if (hash !== location.hash) { location.replace(hash); return; }
  markNav();
  for (const [re, show] of routes) {
    const m = hash.match(re);
    if (m) {
      const stop = (await show(m)) || null;
      // another page opened while this one loaded: stop this one's timers at once
      if (mine === shown) leave = stop;
      else if (stop) stop();
      return;
    }
  }
  main.replaceChildren();
  const p = document.createElement("p");
  p.textContent = "There is no such page.";
  main.append(p);
}

whenSignedOut(() => { signedIn(null); route(); });

document.getElementById("logout").addEventListener("click", async () => {
  try { await request("DELETE", "/dashboard/session"); } catch { /* signed out either way */ }
  signedIn(null);
  if (location.hash === "#/login") route();
  else location.hash = "#/login"; // hashchange shows the sign-in page
});

// the skip link moves focus without touching the route
document.getElementById("skip").addEventListener("click", (e) => { e.preventDefault(); main.focus(); });

window.addEventListener("hashchange", route);

(async () => {
  try { signedIn(await request("GET", "/dashboard/session")); } catch { signedIn(null); }
  route();
})();
