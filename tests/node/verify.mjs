// Verifies webhook requests as a receiver written for Resend would: with the Standard Webhooks
// library (`new Webhook(secret).verify(body, headers)`, on the webhook-* headers and, renamed, on
// the svix-* ones) and with the official SDK's `resend.webhooks.verify`.
// Input (stdin): {"secret": "whsec_...", "wrong_secret": "whsec_..." (optional),
//                 "requests": [{"body": "<exactly as received>", "headers": {"name": "value", ...}}]}
// Output: one object per request: {"standard": true|"<error>", "svix": ..., "resend": ...,
//   "wrong": true when the wrong secret was refused (null without one), "payload": <the verified JSON>}.
import { Webhook } from 'standardwebhooks';
import { Resend } from 'resend';

function attempt(fn) {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    return { ok: false, value: String(e && e.message ? e.message : e) };
  }
}

let input = '';
for await (const chunk of process.stdin) input += chunk;
const { secret, wrong_secret: wrongSecret, requests } = JSON.parse(input);
const resend = new Resend('re_verify_only');
const out = [];
for (const { body, headers } of requests) {
  const h = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const standard = attempt(() => new Webhook(secret).verify(body, h));
  const svix = attempt(() => new Webhook(secret).verify(body, {
    'webhook-id': h['svix-id'], 'webhook-timestamp': h['svix-timestamp'], 'webhook-signature': h['svix-signature'],
  }));
  const viaSdk = attempt(() => resend.webhooks.verify({
    payload: body,
    headers: { id: h['svix-id'], timestamp: h['svix-timestamp'], signature: h['svix-signature'] },
    webhookSecret: secret,
  }));
  let wrong = null;
  if (wrongSecret) {
    const a = attempt(() => new Webhook(wrongSecret).verify(body, h));
    const b = attempt(() => resend.webhooks.verify({
      payload: body,
      headers: { id: h['svix-id'], timestamp: h['svix-timestamp'], signature: h['svix-signature'] },
      webhookSecret: wrongSecret,
    }));
    wrong = !a.ok && !b.ok;
  }
  out.push({
    standard: standard.ok || standard.value,
    svix: svix.ok || svix.value,
    resend: viaSdk.ok || viaSdk.value,
    wrong,
    payload: standard.ok ? standard.value : null,
  });
}
process.stdout.write(JSON.stringify(out));
