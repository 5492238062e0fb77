#!/usr/bin/env bash
# `make run`: first time, creates a setup in VAR with `mailwerk init`; then serves in the foreground.
set -euo pipefail
bin=$1
var=$2
if [ ! -f "$var/mailwerk.conf" ]; then
  "$bin" init --dir "$var"
  echo
else
  echo "Using the existing setup in $var (its demo user's password was printed when it was created;"
  echo "set a new one with: $bin user passwd demo@mailwerk.test -c $var/mailwerk.conf)"
  echo
fi
smtp=$(sed -n 's/^smtp *= *\([^,]*\).*/\1/p' "$var/mailwerk.conf" | head -n 1)
pop3s=$(sed -n 's/^pop3s *= *\([^,]*\).*/\1/p' "$var/mailwerk.conf" | head -n 1)
domain=$("$bin" domain list -c "$var/mailwerk.conf" | head -n 1)
cat <<MSG
Send a test message to the demo user (from another terminal):
  swaks --server ${smtp:-127.0.0.1:2525} --from you@example.org --to demo@${domain:-mailwerk.test}
It is delivered to the demo user's Maildir at once; read it over POP3 (TLS, self-signed certificate):
  curl -k --user 'demo@${domain:-mailwerk.test}:PASSWORD' pop3s://${pop3s:-127.0.0.1:2995}/1
Messages still waiting (e.g. for other domains): $bin queue list -c $var/mailwerk.conf

MSG
exec "$bin" serve -c "$var/mailwerk.conf"
