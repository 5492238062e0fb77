// Runs calls of the official Resend SDK against RESEND_BASE_URL and prints their results as JSON.
// Input (stdin): {"key": "re_...", "calls": [{"fn": "emails.send", "args": [...]}, ...]}.
// An object {"$buffer": "<base64>"} anywhere in args becomes a Buffer, as an application's file
// contents would be. Output: one array of {data, error} (the SDK's own answer), in call order.
import { Resend } from 'resend';

function revive(v) {
  if (Array.isArray(v)) return v.map(revive);
  if (v && typeof v === 'object') {
    if (typeof v.$buffer === 'string') return Buffer.from(v.$buffer, 'base64');
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, revive(x)]));
  }
  return v;
}

let input = '';
for await (const chunk of process.stdin) input += chunk;
const { key, calls } = JSON.parse(input);
const resend = new Resend(key);
const out = [];
for (const call of calls) {
  const path = call.fn.split('.');  // "emails.send", "suppressions.batch.add"
  let target = resend;
  for (const part of path.slice(0, -1)) target = target[part];
  const r = await target[path[path.length - 1]](...revive(call.args || []));
  out.push({ data: r.data, error: r.error });
}
process.stdout.write(JSON.stringify(out));
