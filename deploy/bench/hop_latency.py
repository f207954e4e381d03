#!/usr/bin/env python3
"""Added latency of the silo -> gateway hop, measured on a running cluster (deploy/local-cluster.sh).

For each run it creates a thread through a gateway, reads the thread's events at the same time from the owning
silo's internal stream and from the gateway's public stream, sends a message, and compares, event by event, when
each reader received it (same machine, same monotonic clock). Prints the median, p95 and max of
gateway_arrival - silo_arrival over all events.

    source /tmp/conversations-cluster/cluster.env   # or pass the values below
    deploy/bench/hop_latency.py --gateway http://127.0.0.1:8081 --silos http://127.0.0.1:7101,http://127.0.0.1:7102 \
        --key "$CONVERSATIONS_CLUSTER_KEY" --runs 20
"""
import argparse
import json
import statistics
import threading
import time
import urllib.error
import urllib.request


def post(url, body, headers=None):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read() or b"null")


def read_events(url, headers, arrivals, ready, stop_type="run.completed"):
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        ready.set()
        event_id = None
        while True:
            line = response.readline()
            if not line:
                return
            line = line.decode().rstrip("\n")
            if line.startswith("id:"):
                event_id = int(line[3:].strip())
            elif line.startswith("event:"):
                arrivals[event_id] = time.monotonic()
                if line[6:].strip() == stop_type:
                    return


def open_silo_stream(silos, thread_id, key):
    """The owning silo serves the thread's live events; others answer 421 with the owner's address."""
    for silo in silos:
        url = f"{silo.rstrip('/')}/internal/threads/{thread_id}/events?after=0"
        try:
            urllib.request.urlopen(urllib.request.Request(url, headers={"X-Cluster-Key": key}), timeout=5).close()
        except urllib.error.HTTPError as error:
            if error.code == 421:
                owner = json.loads(error.read())["ownerAddress"]
                return f"{owner.rstrip('/')}/internal/threads/{thread_id}/events?after=0"
            continue
        return url
    raise SystemExit(f"no silo holds {thread_id}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--silos", required=True, help="comma-separated silo base URLs")
    parser.add_argument("--key", required=True, help="the cluster key")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--message", default="what is 17 * 23?")
    args = parser.parse_args()
    silos = args.silos.split(",")
    added = []
    for _ in range(args.runs):
        thread_id = post(f"{args.gateway.rstrip('/')}/threads", {})["id"]
        silo_url = open_silo_stream(silos, thread_id, args.key)
        at_silo, at_gateway = {}, {}
        ready_silo, ready_gateway = threading.Event(), threading.Event()
        readers = [
            threading.Thread(target=read_events, args=(silo_url, {"X-Cluster-Key": args.key}, at_silo, ready_silo)),
            threading.Thread(target=read_events, args=(f"{args.gateway.rstrip('/')}/threads/{thread_id}/events", {}, at_gateway, ready_gateway)),
        ]
        for reader in readers:
            reader.start()
        ready_silo.wait(10)
        ready_gateway.wait(10)
        time.sleep(0.2)  # both upstreams attached before the run starts
        post(f"{args.gateway.rstrip('/')}/threads/{thread_id}/messages", {"content": args.message})
        for reader in readers:
            reader.join(60)
        added.extend((at_gateway[i] - at_silo[i]) * 1000 for i in at_silo if i in at_gateway)
    added.sort()
    p95 = added[max(0, int(len(added) * 0.95) - 1)]
    print(f"events: {len(added)} over {args.runs} runs")
    print(f"silo->gateway added latency: median {statistics.median(added):.2f} ms, p95 {p95:.2f} ms, max {added[-1]:.2f} ms")


if __name__ == "__main__":
    main()
