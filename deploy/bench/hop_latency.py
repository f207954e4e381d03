#!/usr/bin/env python3
"""Added latency of the live path, grain -> gateway -> client, measured on a running cluster or embedded server.

Each event carries `createdAt`: the time the thread grain appended it (on the same machine, so the same clock as
this script). For each run it opens the thread's event stream on the watching gateway, sends a message through the
sending gateway, and records arrival_time - createdAt for every event the watcher receives. Prints p50/p95/p99/max
over all events. With two gateways the events cross from the silo running the thread to the other gateway.

    deploy/local-cluster.sh                         # prints the gateways' URLs under "Gateways:"
    deploy/bench/hop_latency.py --send http://127.0.0.1:8081 --watch http://127.0.0.1:8082 --runs 20
"""
import argparse
import json
import statistics
import threading
import time
import urllib.request
from datetime import datetime


def post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read() or b"null")


def parse_time(text):
    # .NET writes 7 fractional digits; Python takes 6.
    head, _, rest = text.partition(".")
    digits = "".join(c for c in rest if c.isdigit())
    zone = rest[len(digits):]
    return datetime.fromisoformat(f"{head}.{digits[:6]}{zone}").timestamp()


def watch(url, delays, ready, done_type="run.completed"):
    request = urllib.request.Request(url, headers={"Accept": "text/event-stream"})
    with urllib.request.urlopen(request, timeout=120) as response:
        ready.set()
        while True:
            line = response.readline()
            if not line:
                return
            line = line.decode().rstrip("\n")
            if not line.startswith("data:"):
                continue
            arrived = time.time()
            event = json.loads(line[5:])
            delays.append((arrived - parse_time(event["createdAt"])) * 1000)
            if event["type"] in (done_type, "run.failed", "run.cancelled"):
                return


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--send", required=True, help="gateway the messages are sent through")
    parser.add_argument("--watch", help="gateway whose /events stream is measured (default: --send)")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--message", default="tell me a story")
    args = parser.parse_args()
    watch_base = (args.watch or args.send).rstrip("/")
    send_base = args.send.rstrip("/")
    delays = []
    for _ in range(args.runs):
        thread = post(f"{send_base}/threads", {})["id"]
        ready = threading.Event()
        watcher = threading.Thread(target=watch, args=(f"{watch_base}/threads/{thread}/events", delays, ready))
        watcher.start()
        ready.wait(30)
        time.sleep(0.2)  # the watcher's feed is open before the run starts
        post(f"{send_base}/threads/{thread}/messages", {"content": args.message})
        watcher.join(120)
    delays.sort()

    def pct(p):
        return delays[min(len(delays) - 1, int(len(delays) * p))]

    print(f"events={len(delays)} runs={args.runs} grain->gateway->client ms: "
          f"p50={statistics.median(delays):.2f} p95={pct(0.95):.2f} p99={pct(0.99):.2f} max={delays[-1]:.2f}")


if __name__ == "__main__":
    main()
