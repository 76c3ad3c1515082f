"""Schema registry throughput: registrations/s and lookups/s of cached ids, against one
broker and one `gregor registry`, over keep-alive HTTP/1.1 (http.client), and the
same lookups through confluent-kafka's SchemaRegistryClient with its cache off.

    GREGOR_BIN=target/release/gregor .venv/bin/python bench/registry_bench.py [SCHEMAS] [LOOKUPS]

Registrations are sequential (each is a write to `_schemas` acknowledged by the broker
and read back before the answer, as Confluent's are); lookups use THREADS connections."""
import http.client
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from conftest import Broker  # noqa: E402
from registry import Registry  # noqa: E402

SCHEMAS = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
LOOKUPS = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000
THREADS = 4
CT = {"Content-Type": "application/vnd.schemaregistry.v1+json"}


def avro(i):
    return json.dumps({"type": "record", "name": f"R{i}", "namespace": "bench",
                       "fields": [{"name": "id", "type": "long"}, {"name": f"f{i}", "type": "string"}]})


def call(conn, method, path, body=None):
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=CT)
    r = conn.getresponse()
    data = r.read()
    assert r.status == 200, (r.status, data)
    return json.loads(data)


def main():
    d = Path(tempfile.mkdtemp())
    b = Broker(d / "broker", d / "broker.log").start()
    reg = Registry(b.bootstrap, d / "registry.log").start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", reg.port)
        call(conn, "PUT", "/config", {"compatibility": "NONE"})
        ids = []
        start = time.monotonic()
        for i in range(SCHEMAS):
            ids.append(call(conn, "POST", f"/subjects/bench-{i % 10}/versions", {"schema": avro(i)})["id"])
        reg_s = time.monotonic() - start
        assert len(set(ids)) == SCHEMAS

        per = LOOKUPS // THREADS

        def lookups():
            c = http.client.HTTPConnection("127.0.0.1", reg.port)
            for n in range(per):
                call(c, "GET", f"/schemas/ids/{ids[n % len(ids)]}")
            c.close()

        threads = [threading.Thread(target=lookups) for _ in range(THREADS)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        look_s = time.monotonic() - start

        from confluent_kafka.schema_registry import SchemaRegistryClient
        client = SchemaRegistryClient({"url": reg.url, "cache.capacity": 1})
        n_client = min(LOOKUPS // 10, 5000)
        start = time.monotonic()
        for n in range(n_client):
            # Emptied each time, so every call is a request to the registry.
            client._cache = type(client._cache)()
            client.get_schema(ids[n % len(ids)])
        client_s = time.monotonic() - start

        print(f"registrations: {SCHEMAS} in {reg_s:.2f} s = {SCHEMAS / reg_s:,.0f}/s")
        print(f"lookups (http.client, {THREADS} connections): {per * THREADS} in {look_s:.2f} s"
              f" = {per * THREADS / look_s:,.0f}/s")
        print(f"lookups (SchemaRegistryClient, one thread): {n_client} in {client_s:.2f} s"
              f" = {n_client / client_s:,.0f}/s")
    finally:
        reg.kill9()
        b.kill9()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
