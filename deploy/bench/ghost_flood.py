#!/usr/bin/env python3
"""Floods a running server with sends to thread ids that do not exist, to measure what they cost in memory.

    python3 deploy/bench/ghost_flood.py --url http://127.0.0.1:5000 --requests 20000 [--pid PID]

Every request is `POST /threads/ghost-<n>/messages` and must answer 404. With --pid (the server's process id) it
prints the server's resident memory (VmRSS) after a warm-up, right after the flood, and 10 s later.
"""
import argparse
import http.client
import json
import threading
import time
import urllib.parse


def rss(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def flood(host, port, first, count, failures):
    connection = http.client.HTTPConnection(host, port)
    body = json.dumps({"content": "hi"})
    for i in range(first, first + count):
        connection.request("POST", f"/threads/ghost-{i}/messages", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        if response.status != 404:
            failures.append(response.status)


def run(host, port, total, workers=8, offset=0):
    failures = []
    per = total // workers
    threads = [threading.Thread(target=flood, args=(host, port, offset + k * per, per, failures)) for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit(f"{len(failures)} requests did not answer 404, e.g. {failures[0]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:5000")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--pid", type=int)
    args = parser.parse_args()
    url = urllib.parse.urlparse(args.url)
    host, port = url.hostname, url.port or 80

    run(host, port, 400, offset=10_000_000)  # warm-up: JIT, pools
    time.sleep(3)
    if args.pid:
        print(f"warm:        VmRSS {rss(args.pid) / 1024:.1f} MiB")
    started = time.monotonic()
    run(host, port, args.requests)
    print(f"{args.requests} ghost sends in {time.monotonic() - started:.1f} s, all 404")
    if args.pid:
        time.sleep(5)
        print(f"after flood: VmRSS {rss(args.pid) / 1024:.1f} MiB")
        time.sleep(10)
        print(f"10 s later:  VmRSS {rss(args.pid) / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
