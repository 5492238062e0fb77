"""GET /metrics, read by the Prometheus client library's own parser: mail sent through the API and
over SMTP shows up as accepted by listener, delivered locally with its latency, the queue gauges
count what waits (remote mail, as the test DNS never answers), the open sessions include the
scraper's, and every API answer is counted by route pattern, method and status."""
import smtplib

import pytest
from prometheus_client.parser import text_string_to_metric_families

from apifixture import Api, SENDER
from conftest import Server
from dnsfixture import dns_server  # noqa: F401 (a fixture)
from mtafixture import free_port_on, mtas, wait_for  # noqa: F401

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("metrics"), overrides=["api.rate_limit=none"]).start()
    a = Api(s, s.cli("apikey", "create", "tests", "--quiet").stdout.strip())
    yield a
    s.stop()


class Scrape:
    def __init__(self, api):
        r = api.curl("GET", "/metrics", key=None)
        assert r.status == 200, r
        assert r.headers["content-type"] == CONTENT_TYPE
        self.text = r.raw.decode()
        self.families = {f.name: f for f in text_string_to_metric_families(self.text)}
        self.samples = {}
        for f in self.families.values():
            for s in f.samples:
                self.samples[(s.name, frozenset(s.labels.items()))] = s.value

    def get(self, name, **labels):
        return self.samples.get((name, frozenset(labels.items())))

    def type_of(self, name):
        return self.families[name].type


def scrape(api):
    return Scrape(api)


def test_metrics_of_api_and_smtp_mail(api):
    s = api.server
    ids = [api.send(subject="m%d" % i, text="hello") for i in range(2)]
    # remote mail: the test DNS never answers, so it waits in the queue
    api.send(to=["bob@example.org"], subject="remote", text="waits")
    with smtplib.SMTP("127.0.0.1", s.smtp_port) as c:
        c.ehlo("client.example")
        c.sendmail("sender@example.org", [SENDER], b"Subject: over smtp\r\n\r\nhi\r\n")
        for id in ids:
            api.wait_event(id, "delivered")
        # three local deliveries, once recorded; the SMTP session is still open while we look
        m = wait_for(lambda: (lambda m: m if (m.get("mailwerk_deliveries_total", route="local",
                                                    result="delivered") or 0) >= 3 else None)(scrape(api)))
        assert m, "the deliveries were not counted"
        assert m.get("mailwerk_sessions_open", role="smtp") >= 1

    assert m.get("mailwerk_build_info", version=m.families["mailwerk_build_info"].samples[0].labels["version"]) == 1
    assert m.type_of("mailwerk_messages_accepted") == "counter"
    assert m.get("mailwerk_messages_accepted_total", listener="http") == 3
    assert m.get("mailwerk_messages_accepted_total", listener="smtp") == 1
    assert m.get("mailwerk_messages_accepted_total", listener="submission") == 0
    assert m.get("mailwerk_messages_refused_total", listener="smtp", reason="min_free_space") == 0
    assert m.get("mailwerk_deliveries_total", route="local", result="delivered") == 3
    assert m.get("mailwerk_deliveries_total", route="local", result="failed") == 0

    # the latency histogram: one observation per delivered recipient, cumulative buckets
    assert m.type_of("mailwerk_delivery_latency_seconds") == "histogram"
    assert m.get("mailwerk_delivery_latency_seconds_count") == 3
    assert m.get("mailwerk_delivery_latency_seconds_bucket", le="+Inf") == 3
    assert m.get("mailwerk_delivery_latency_seconds_bucket", le="86400") == 3
    assert m.get("mailwerk_delivery_latency_seconds_sum") >= 0
    buckets = sorted((float(x.labels["le"]), x.value) for x in m.families["mailwerk_delivery_latency_seconds"].samples
                     if x.name.endswith("_bucket"))
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)

    # the queue: the remote message waits (gauges read from queue.db at scrape time)
    assert m.type_of("mailwerk_queue_messages") == "gauge"
    assert m.get("mailwerk_queue_messages") >= 1
    assert m.get("mailwerk_queue_oldest_seconds") >= 0

    # the scraper's own connection is open while it is answered
    assert m.get("mailwerk_sessions_open", role="http") >= 1
    assert m.get("mailwerk_sessions_open", role="pop3") == 0

    # API answers by route pattern: the SDK's sends, and the reads of wait_event
    assert m.get("mailwerk_http_requests_total", route="/emails", method="POST", status="200") == 3
    assert m.get("mailwerk_http_requests_total", route="/emails/{id}", method="GET", status="200") >= 2
    assert m.type_of("mailwerk_outbound_connections") == "counter"
    assert m.type_of("mailwerk_dns_query_seconds") == "histogram"


def test_requests_counted_by_route_and_status(api):
    before = scrape(api)
    assert api.curl("GET", "/no/such/thing").status == 404
    assert api.curl("POST", "/emails", {"to": SENDER}, key=None).status == 401
    assert api.curl("DELETE", "/healthz", key=None).status == 405
    m = scrape(api)

    def grew(name, **labels):
        return (m.get(name, **labels) or 0) - (before.get(name, **labels) or 0)

    assert grew("mailwerk_http_requests_total", route="other", method="GET", status="404") == 1
    # a refusal by authentication counts for the route it was meant for
    assert grew("mailwerk_http_requests_total", route="/emails", method="POST", status="401") == 1
    assert grew("mailwerk_http_requests_total", route="other", method="DELETE", status="405") == 1
    # the previous scrape was answered, so it is counted now
    assert grew("mailwerk_http_requests_total", route="/metrics", method="GET", status="200") == 1


def test_metrics_text_format(api):
    m = scrape(api)
    text = m.text
    lines = text.splitlines()
    # each family: HELP, then TYPE, then its samples; names are prefixed
    for i, line in enumerate(lines):
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert name.startswith("mailwerk_"), line
            assert lines[i + 1].startswith("# TYPE %s " % name), lines[i + 1]
    # no webhook here: an empty outbox (read, so 0 is true) and nothing attempted
    # (a failing, a hanging receiver: test_webhooks.py's test_metrics_backlog_and_failures)
    assert m.type_of("mailwerk_webhook_backlog") == "gauge"
    assert m.get("mailwerk_webhook_backlog") == 0
    assert m.type_of("mailwerk_webhook_failures") == "counter"
    assert m.get("mailwerk_webhook_failures_total") == 0
    for result in ("delivered", "retry", "failed"):
        assert m.get("mailwerk_webhook_attempts_total", result=result) == 0
    assert text.endswith("\n")


def test_remote_delivery_connections_and_dns(dns_server, mtas, servers):
    """Remote mail through the DNS fixture to one receiver with STARTTLS and one without."""
    port = free_port_on("127.0.0.2", "127.0.0.3")
    dns_server.load({"tls.test": {"MX": ["10 mx.tls.test."]}, "mx.tls.test": {"A": "127.0.0.2"},
                     "plain.test": {"MX": ["10 mx.plain.test."]}, "mx.plain.test": {"A": "127.0.0.3"}})
    mtas.start("127.0.0.2", port, starttls=True)  # self-signed: opportunistic TLS takes it
    mtas.start("127.0.0.3", port)
    s = servers.make("sender", {"dns.resolver": dns_server.resolver, "delivery.remote_port": str(port),
                                "api.rate_limit": "none"}).start()
    api = Api(s, s.cli("apikey", "create", "t", "--quiet").stdout.strip())
    ids = [api.send(to=["bob@tls.test"], subject="tls", text="hi"),
           api.send(to=["bob@plain.test"], subject="plain", text="hi")]
    for id in ids:
        api.wait_event(id, "delivered")
    m = wait_for(lambda: (lambda m: m if (m.get("mailwerk_deliveries_total", route="remote",
                                                result="delivered") or 0) >= 2 else None)(scrape(api)))
    assert m, "the remote deliveries were not counted"
    assert m.get("mailwerk_deliveries_total", route="remote", result="delivered") == 2
    assert m.get("mailwerk_outbound_connections_total", tls="yes") == 1
    assert m.get("mailwerk_outbound_connections_total", tls="no") == 1
    # an MX and an address lookup per domain at least, each timed
    assert m.get("mailwerk_dns_query_seconds_count") >= 4
    assert m.get("mailwerk_dns_query_seconds_bucket", le="+Inf") == m.get("mailwerk_dns_query_seconds_count")
    assert m.get("mailwerk_delivery_latency_seconds_count") == 2
    # both left the queue
    assert wait_for(lambda: scrape(api).get("mailwerk_queue_messages") == 0)
