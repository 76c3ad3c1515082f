"""`gregor console` in a real headless Chromium (Debian's chromium, driven by Playwright):
the pages load and list topics, the message browser shows what confluent-kafka
produced (keys, a pretty-printed JSON value, headers, search by key), a topic can be
created through the form, and a consumer group's lag in the UI goes up while its
consumer is stopped and back to 0 once it resumes. Screenshots go to the test's tmp
dir; with GREGOR_UPDATE_SCREENSHOTS=1 the group page also goes to docs/console.png.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from playwright.sync_api import expect, sync_playwright

from conftest import BIN, ROOT, wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


class Console:
    def __init__(self, bootstrap, log_path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [BIN, "console", "--listen", f"127.0.0.1:{self.port}", "-b", bootstrap,
             "--lag-sample-interval-ms", "300", "--request-timeout-ms", "3000"],
            stdout=self.log, stderr=self.log,
        )

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"console exited with {self.proc.returncode}; see {log_path}")
            return http_status(self.url + "/") == 200

        wait_until(up, timeout=30, what="the console to answer")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                assert self.proc.wait(15) == 0, "console exited non-zero on SIGTERM"
            finally:
                if self.proc.poll() is None:
                    self.proc.kill()
        self.log.close()


@pytest.fixture
def console_for(tmp_path):
    started = []

    def make(broker):
        c = Console(broker.bootstrap, tmp_path / "console.log")
        started.append(c)
        return c

    yield make
    for c in started:
        c.stop()


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (test.sh installs Debian's chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    yield pg
    ctx.close()


def create_topic(bootstrap, name, partitions=1):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        f.result(30)


def test_overview_lists_brokers_and_topics_and_a_down_broker_is_an_error_page(
        broker_factory, console_for, page, tmp_path):
    broker = broker_factory({"broker.rack": "rack-a"})
    create_topic(broker.bootstrap, "orders", 3)
    console = console_for(broker)
    page.goto(console.url + "/")
    expect(page.locator("#broker-count")).to_have_text("1")
    expect(page.locator("#controller")).not_to_have_text("-")
    expect(page.locator("#cluster-id")).not_to_have_text("-")
    expect(page.locator("#brokers tbody tr")).to_contain_text(f"127.0.0.1:{broker.port}")
    expect(page.locator("#brokers tbody tr")).to_contain_text("rack-a")
    expect(page.locator("#topic-count")).to_have_text("1")
    expect(page.locator("#partition-count")).to_have_text("3")
    expect(page.locator("#offline")).to_have_text("0")
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)

    page.get_by_role("link", name="Topics").first.click()
    row = page.locator('#topics tr[data-topic="orders"]')
    expect(row).to_be_visible()
    expect(row.locator("td").nth(1)).to_have_text("3")
    row.get_by_role("link", name="orders").click()
    expect(page.locator("#topic-name")).to_have_text("orders")
    expect(page.locator("#partitions tbody tr")).to_have_count(3)
    expect(page.locator("#configs")).to_contain_text("cleanup.policy")

    # The cluster goes away: a page, not a hang or a crash.
    broker.kill9()
    resp = page.goto(console.url + "/topics")
    assert resp.status == 502
    expect(page.locator("#error")).to_be_visible()
    page.screenshot(path=str(tmp_path / "broker-down.png"))


def test_message_browser_shows_keys_pretty_json_and_headers_and_searches_by_key(
        broker, console_for, page, tmp_path):
    create_topic(broker.bootstrap, "payments")
    p = Producer({"bootstrap.servers": broker.bootstrap})
    p.produce("payments", key=b"plain-1", value=b"hello <b>not bold</b>")
    p.produce("payments", key=b"json-2", value=b'{"user":"ada","amount":42,"tags":["a","b"]}',
              headers=[("source", b"checkout"), ("trace", b"abc123")])
    for i in range(3, 8):
        p.produce("payments", key=f"plain-{i}".encode(), value=f"value {i}".encode())
    assert p.flush(30) == 0
    console = console_for(broker)

    page.goto(console.url + "/topics/payments/messages")
    rows = page.locator("#messages tr.message")
    expect(rows).to_have_count(7)
    expect(rows.nth(0).locator("td.key")).to_have_text("plain-1")
    # Escaped, not rendered: the value's markup is text.
    expect(rows.nth(0).locator("td.value")).to_have_text("hello <b>not bold</b>")
    json_row = page.locator('#messages tr[data-offset="1"]')
    expect(json_row.locator("td.key")).to_have_text("json-2")
    pretty = json_row.locator("pre.json").inner_text()
    assert pretty.startswith('{\n  "user": "ada",\n  "amount": 42,'), pretty
    expect(json_row.locator("td.headers")).to_contain_text("source: checkout")
    expect(json_row.locator("td.headers")).to_contain_text("trace: abc123")
    page.screenshot(path=str(tmp_path / "messages.png"), full_page=True)

    # The topic page: offsets and the size on disk (DescribeLogDirs).
    page.locator("h1 a").click()
    expect(page.locator("#partitions td.high")).to_have_text("7")
    size = page.locator("#partitions td.size").inner_text()
    assert size.endswith(" B") and int(size[:-2]) > 0, size
    page.go_back()

    # Search by key, through the form.
    page.fill('#browse input[name="key"]', "json")
    page.click('#browse button[type="submit"]')
    expect(rows).to_have_count(1)
    expect(rows.first.locator("td.key")).to_have_text("json-2")
    expect(page.locator("#range")).to_contain_text("read 7")

    # From an offset, a few.
    page.fill('#browse input[name="key"]', "")
    page.fill('#browse input[name="offset"]', "4")
    page.fill('#browse input[name="limit"]', "2")
    page.click('#browse button[type="submit"]')
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("td.offset")).to_have_text("4")
    expect(rows.nth(1).locator("td.offset")).to_have_text("5")

    # From a time after everything: nothing; from the epoch: everything.
    page.fill('#browse input[name="offset"]', "")
    page.fill('#browse input[name="limit"]', "20")
    page.fill('#browse input[name="timestamp"]', "2999-01-01T00:00:00Z")
    page.click('#browse button[type="submit"]')
    expect(rows).to_have_count(0)
    page.fill('#browse input[name="timestamp"]', "1970-01-01T00:00:00Z")
    page.click('#browse button[type="submit"]')
    expect(rows).to_have_count(7)


def test_a_topic_is_created_through_the_form(broker, console_for, page):
    console = console_for(broker)
    page.goto(console.url + "/topics")
    page.fill('#create-topic input[name="name"]', "made-in-the-ui")
    page.fill('#create-topic input[name="partitions"]', "4")
    page.click('#create-topic button[type="submit"]')
    expect(page).to_have_url(console.url + "/topics/made-in-the-ui")
    expect(page.locator("#partitions tbody tr")).to_have_count(4)
    md = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10)
    assert len(md.topics["made-in-the-ui"].partitions) == 4

    # The same name again: the broker's error, on a page.
    page.goto(console.url + "/topics")
    page.fill('#create-topic input[name="name"]', "made-in-the-ui")
    page.click('#create-topic button[type="submit"]')
    expect(page.locator("#error")).to_contain_text("TopicAlreadyExists")


def consume_and_commit(bootstrap, group, topic, n, keep_open=False):
    """Consumes `topic` in `group` until `n` records were read, committing synchronously
    as it goes; then closes the consumer, or returns it still a member."""
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "client.id": f"{group}-worker",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    c.subscribe([topic])
    seen = set()

    def step():
        for m in c.consume(100, 0.3):
            if m.error() is None:
                seen.add((m.partition(), m.offset()))
                c.commit(message=m, asynchronous=False)
        return len(seen) >= n

    try:
        wait_until(step, timeout=60, what=f"{group} to read {n} records")
    except BaseException:
        c.close()
        raise
    if keep_open:
        return c
    c.close()
    return None


def produce(bootstrap, topic, start, n):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(start, start + n):
        p.produce(topic, key=f"k{i}".encode(), value=f'{{"n":{i}}}'.encode(), partition=i % 2)
    assert p.flush(30) == 0


def test_group_lag_goes_up_while_the_consumer_is_stopped_and_down_when_it_resumes(
        broker_factory, console_for, page, tmp_path):
    broker = broker_factory({"group.initial.rebalance.delay.ms": "0"})
    create_topic(broker.bootstrap, "events", 2)
    produce(broker.bootstrap, "events", 0, 10)
    consume_and_commit(broker.bootstrap, "billing", "events", 10)
    console = console_for(broker)

    page.goto(console.url + "/groups")
    expect(page.locator('#groups tr[data-group="billing"]')).to_be_visible()
    page.get_by_role("link", name="billing").click()
    lag = page.locator("#total-lag")
    expect(lag).to_have_text("0")

    # The consumer is stopped; more records arrive: the lag (refreshed in place) rises.
    produce(broker.bootstrap, "events", 10, 25)
    expect(lag).to_have_text("25", timeout=20_000)
    expect(page.locator("#offsets td.lag")).to_have_text(["13", "12"])
    # The plot has the samples from before and after.
    wait_until(lambda: int(page.locator("#lag-plot").get_attribute("data-samples")) >= 3,
               timeout=20, what="lag samples in the plot")
    page.screenshot(path=str(tmp_path / "group-lagging.png"), full_page=True)

    # The consumer resumes and catches up: lag back to 0.
    resumed = consume_and_commit(broker.bootstrap, "billing", "events", 25, keep_open=True)
    try:
        expect(lag).to_have_text("0", timeout=20_000)
        # It is a member again, with both partitions.
        expect(page.locator("#member-count")).to_have_text("1", timeout=20_000)
        expect(page.locator("#group-state")).to_have_text("Stable")
        expect(page.locator("#members tbody")).to_contain_text("billing-worker")
        expect(page.locator("#members tbody")).to_contain_text("events 0, 1")
        assert_history_and_screenshot(page, console, tmp_path)
    finally:
        resumed.close()


def assert_history_and_screenshot(page, console, tmp_path):
    # The sampled history (what the plot draws) has the climb to 25 and the drop to 0.
    def history():
        with urllib.request.urlopen(console.url + "/api/groups/billing/lag", timeout=5) as r:
            return [s["lag"] for s in json.load(r)["samples"]]

    wait_until(lambda: (h := history()) and 25 in h and h[-1] == 0, timeout=20,
               what="a sampled lag of 25 and then 0")
    # The plot on the page (refreshed in place) peaks at 25 and ends at 0.
    plot = page.locator("#lag-plot")
    expect(plot).to_have_attribute("data-peak", "25", timeout=20_000)
    expect(plot).to_have_attribute("data-last", "0", timeout=20_000)
    assert len(page.locator("#lag-line").get_attribute("points").split()) >= 4
    shot = tmp_path / "group.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("GREGOR_UPDATE_SCREENSHOTS") == "1":
        shutil.copy(shot, ROOT / "docs" / "console.png")


def test_transactions_page_shows_an_open_transaction_and_its_partitions(
        broker, console_for, page):
    create_topic(broker.bootstrap, "ledger", 2)
    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "ledger-app"})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce("ledger", key=b"a", value=b"1", partition=1)
    p.flush(30)
    console = console_for(broker)
    page.goto(console.url + "/transactions")
    row = page.locator("#transactions tbody tr", has_text="ledger-app")
    expect(row).to_contain_text("Ongoing")
    expect(row).to_contain_text("ledger 1")
    p.commit_transaction(30)
    page.reload()
    expect(row).to_contain_text("CompleteCommit")
    expect(row).not_to_contain_text("ledger 1")
