"""GET /stats, what the dashboard's overview draws: the events of tracked mail per hour of the
last day and per day of the last 30, the mail received for the applications, the queue's depth
and its oldest deferred recipient. Mail really goes out: a receiving MTA on 127.0.0.2 that takes
one domain's mail, defers another's and refuses a third's, found through the DNS fixture."""
import re
import time

from apifixture import Api, SENDER
from conftest import DOMAIN
from dnsfixture import dns_server  # noqa: F401 (a fixture)
from mtafixture import free_port_on, mtas, wait_for  # noqa: F401

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_stats_count_what_happened(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    for d in ("ok.test", "slow.test"):
        dns_server.load({d: {"MX": ["10 mx.%s." % d]}, "mx." + d: {"A": "127.0.0.2"}})
    mtas.start("127.0.0.2", port, rcpt_replies={"bob@slow.test": "451 4.2.1 come back later"})
    s = servers.make("stats", {"dns.resolver": dns_server.resolver, "delivery.remote_port": str(port),
                               "delivery.retry_schedule": "1h", "api.rate_limit": "none"}).start()
    api = Api(s, s.cli("apikey", "create", "t", "--quiet").stdout.strip())
    ids = [api.send(to=[SENDER], subject="local %d" % i, text="hi") for i in range(3)]
    ids.append(api.send(to=["alice@ok.test"], subject="remote", text="hi"))
    slow = api.send(to=["bob@slow.test"], subject="deferred", text="hi")
    for id in ids:
        api.wait_event(id, "delivered")
    api.wait_event(slow, "delivery_delayed")
    s.cli("route", "add", "in@" + DOMAIN)
    import smtplib
    with smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30) as c:
        c.sendmail("x@elsewhere.test", ["in@" + DOMAIN], b"Subject: in\r\nFrom: x@elsewhere.test\r\n\r\nhi\r\n")

    def day():
        r = api.curl("GET", "/stats")
        return r.json if r.status == 200 and r.json["received"] == 1 else None
    st = wait_for(day, 20)
    assert st, api.curl("GET", "/stats")
    assert st["object"] == "stats" and st["window"] == "24h" and st["bucket"] == "hour" and ISO.match(st["since"])
    assert len(st["series"]) == 24
    t = st["totals"]
    assert t["delivered"] == 4 and t["sent"] == 5 and t["delivery_delayed"] == 1 and t["bounced"] == 0, t
    # the last bucket is the current hour: all of it is there (or, across an hour's turn, in the one before)
    assert st["series"][-1]["delivered"] + st["series"][-2]["delivered"] == 4
    assert st["series"][-1]["start"][:13] in (time.strftime("%Y-%m-%dT%H", time.gmtime(time.time() - d)) for d in (0, 60))
    assert sum(b["sent"] for b in st["series"]) == t["sent"]
    q = st["queue"]
    assert q["messages"] == 1 and q["deferred"] == 1 and ISO.match(q["oldest_arrival"])
    od = q["oldest_deferred"]
    assert od["recipient"] == "bob@slow.test" and "451" in od["last_error"] and ISO.match(od["next_attempt"])

    month = api.curl("GET", "/stats?window=30d").json
    assert month["bucket"] == "day" and len(month["series"]) == 30
    assert month["totals"]["delivered"] == 4 and month["series"][-1]["delivered"] + month["series"][-2]["delivered"] == 4
    assert month["series"][-1]["start"].endswith("T00:00:00.000Z")
    assert api.curl("GET", "/stats?window=week").status == 422
    sending = api.key_create("s", "--permission", "sending_access")
    assert api.curl("GET", "/stats", key=sending).status == 403
