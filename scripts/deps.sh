#!/usr/bin/env bash
# Installs the Debian packages that building, testing and benchmarking mailwerk need.
# Idempotent: when every package is already installed it only runs dpkg-query.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build pkg-config clang libclang-rt-dev
  # libraries (see DESIGN.md §2 for why each one)
  libevent-dev libssl-dev libsqlite3-dev libcrypt-dev libinih-dev libjansson-dev libunbound-dev zlib1g-dev
  # the worker's seccomp allow-list (src/server/sandbox.c)
  libseccomp-dev
  # unit tests
  libcmocka-dev
  # integration tests: real clients and tools
  python3 python3-pytest python3-dnslib python3-aiosmtpd swaks libnet-ssleay-perl openssl sqlite3 procps
  # make integration runs the tests that may share the machine several at a time
  python3-pytest-xdist
  # DKIM verifiers and signers nobody here wrote (test_auth.py), and keys made at test time
  python3-dkim opendkim-tools python3-cryptography
  # POP3 clients for the POP3 tests
  curl fetchmail
  # a network namespace of its own for the IPv6 client tests (ip, unshare)
  iproute2 util-linux
  # benchmark peer (smtp-source, smtp-sink, a Postfix to compare with)
  postfix
  # the HTTP API: MIME composition (GMime 3), the webhooks' HTTP client (libcurl multi, DESIGN.md
  # §2), and for its tests the OpenAPI document's validator and the Prometheus text parser; wrk
  # drives bench/api.sh
  libgmime-3.0-dev libcurl4-openssl-dev python3-jsonschema python3-prometheus-client wrk
  # the web dashboard's browser tests: Debian's Chromium, headless, driven through its WebDriver by
  # Selenium (never a browser downloaded at test time); axe-core comes from tests/node's lockfile
  chromium chromium-driver python3-selenium
  # the service unit's checks (systemd-analyze verify/security) and its sysusers.d and tmpfiles.d
  # snippets, applied in a scratch root (test_install.py); make install; fail2ban-regex runs the
  # fail2ban filter over a server's log (test_fail2ban.py; on a machine with systemd, installing
  # fail2ban also starts its own service, which watches only sshd)
  systemd make fail2ban
  # certificates by ACME (test_acme.py): pebble, the ACME test server made for clients, on loopback
  # with real HTTP-01 and TLS-ALPN-01 validation (its test certificates are made at test time)
  pebble
  # make deb: dpkg-buildpackage and debhelper build the Debian package, lintian checks it (test_deb.py)
  dpkg-dev debhelper lintian
  # test_privsep.py makes the sandboxed worker call execve from inside, through gdb
  gdb
)
# `deps.sh bench` also installs what only the benchmarks need: Dovecot as the POP3 peer, and the
# checks bench/checks.sh runs in its Postfix peer: OpenDKIM and OpenDMARC (milters) and
# postfix-policyd-spf-python (SPF). Not by default: on a machine with systemd, installing them
# starts a system Dovecot on ports 110/995 and the milters on their UNIX sockets.
# dbconfig-no-thanks: opendmarc needs dbconfig-mysql or it, and the benchmark keeps no database.
if [ "${1:-}" = bench ]; then
  packages+=(dovecot-pop3d dbconfig-no-thanks opendkim opendmarc postfix-policyd-spf-python)
fi

# JavaScript clients of the HTTP API tests (the official Resend SDK, the Standard Webhooks
# verifier) and axe-core for the dashboard's accessibility check, pinned by
# tests/node/package-lock.json. The SDK needs Node.js 20 or newer.
node_clients() {
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/tests/node"
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "deps.sh: node and npm are needed for the JavaScript clients (Node.js 20 or newer)" >&2
    exit 1
  fi
  # npm ci: exactly the lockfile; again only when the lockfile is newer than what it installed
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "deps.sh: installed the JavaScript clients in tests/node"
  fi
}

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  node_clients
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Postfix asks how to configure itself; we only want its binaries and run private instances.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps.sh: installed ${missing[*]}"
node_clients
