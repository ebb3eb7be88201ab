#!/usr/bin/python3
"""OpenDHT side of the Chord comparison (bench/peers/opendht.ts runs it).

N OpenDHT 2.4 nodes (Debian python3-opendht) in this one process on
127.0.0.1, bootstrapped from the first; V values put from random nodes;
G gets, one at a time, each by a node that does not hold the value and has
not asked for that key before (OpenDHT keeps a finished search and would
answer a second get from it). Each get is timed from the call to its first
value callback (the callback then stops the get). Requests are counted from
every node's message statistics, summed over the whole network: the gross
count during the gets, and the same for an equally long idle window, so the
maintenance share can be taken off. Prints one JSON object on stdout.

Needs the system interpreter: /usr/bin/python3 opendht_bench.py [--nodes 50]
[--values 100] [--gets 500] [--seed 1] [--settle 8] [--idle 5]
"""
import argparse
import json
import random
import resource
import sys
import threading
import time

import opendht as dht

GET_TIMEOUT_S = 5.0


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def total_requests(nodes):
    # getNodeMessageStats: requests handled per kind (ping, find, get, put, listen); every request sent by one of
    # our nodes is received by another of ours, so the sum over the network counts each request once.
    return sum(sum(n.getNodeMessageStats()) for n in nodes)


def holds(node, key_hash_hex):
    return key_hash_hex in node.getStorageLog()


def percentile(xs, p):
    if not xs:
        return float("nan")
    s = sorted(xs)
    rank = -(-p * len(s) // 100)
    return s[min(len(s) - 1, max(0, int(rank) - 1))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=50)
    ap.add_argument("--values", type=int, default=100)
    ap.add_argument("--gets", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--settle", type=float, default=8.0, help="seconds after the last join")
    ap.add_argument("--idle", type=float, default=5.0, help="idle window measured for CPU and background requests")
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    t_start = time.perf_counter()
    cpu_start = cpu_seconds()

    nodes = []
    for i in range(a.nodes):
        r = dht.DhtRunner()
        r.run(port=0, ipv4="127.0.0.1")
        nodes.append(r)
    port = str(nodes[0].getBound().getPort())
    for r in nodes[1:]:
        r.bootstrap("127.0.0.1", port)
    time.sleep(a.settle)

    # Idle window: CPU and requests of the network doing nothing but maintenance.
    req0, cpu0, t0 = total_requests(nodes), cpu_seconds(), time.perf_counter()
    time.sleep(a.idle)
    idle_s = time.perf_counter() - t0
    idle_cpu = cpu_seconds() - cpu0
    idle_reqs = total_requests(nodes) - req0

    # Puts, from random nodes, all waited for.
    keys = [f"peer-bench-{a.seed}-{i}" for i in range(a.values)]
    hashes = [dht.InfoHash.get(k) for k in keys]
    put_failed = 0
    for h in hashes:
        ev = threading.Event()
        res = {}

        def done(ok, _nodes, ev=ev, res=res):
            res["ok"] = ok
            ev.set()

        nodes[rnd.randrange(a.nodes)].put(h, dht.Value(b"v" * 64), done)
        if not ev.wait(10) or not res.get("ok"):
            put_failed += 1
    time.sleep(1.0)

    # Who holds what, from each node's storage.
    logs = [n.getStorageLog() for n in nodes]
    hexes = [h.toString().decode() if isinstance(h.toString(), bytes) else h.toString() for h in hashes]
    holders = [[i for i in range(a.nodes) if hx in logs[i]] for hx in hexes]
    pairs = [(ni, k) for k in range(a.values) for ni in range(a.nodes) if ni not in holders[k]]
    rnd.shuffle(pairs)
    pairs = pairs[: a.gets]

    ms = []
    failed = 0
    req0, cpu0, t0 = total_requests(nodes), cpu_seconds(), time.perf_counter()
    for ni, k in pairs:
        first = threading.Event()
        done_ev = threading.Event()
        stamp = {}
        began = time.perf_counter()

        def on_value(_v, stamp=stamp, first=first):
            if "t" not in stamp:
                stamp["t"] = time.perf_counter()
                first.set()
            return False

        def on_done(_ok, _nodes, done_ev=done_ev):
            done_ev.set()

        nodes[ni].get(hashes[k], on_value, on_done)
        if first.wait(GET_TIMEOUT_S):
            ms.append((stamp["t"] - began) * 1000)
        else:
            failed += 1
        done_ev.wait(GET_TIMEOUT_S)
    get_s = time.perf_counter() - t0
    get_cpu = cpu_seconds() - cpu0
    get_reqs = total_requests(nodes) - req0
    background = idle_reqs / idle_s * get_s if idle_s > 0 else 0
    n_gets = max(1, len(pairs))

    for r in nodes:
        r.join()  # stops the node (shutdown() first would leave join waiting)
    out = {
        "system": "opendht",
        "version": "2.4 (Debian python3-opendht)",
        "nodes": a.nodes,
        "values": a.values,
        "putFailed": put_failed,
        "holdersPerValue": sum(len(h) for h in holders) / max(1, len(holders)),
        "gets": len(pairs),
        "failed": failed,
        "p50Ms": percentile(ms, 50),
        "p90Ms": percentile(ms, 90),
        "p99Ms": percentile(ms, 99),
        "meanMs": sum(ms) / len(ms) if ms else float("nan"),
        "requestsPerGetGross": get_reqs / n_gets,
        "requestsPerGet": max(0.0, (get_reqs - background) / n_gets),
        "idleSeconds": idle_s,
        "idleCpuPercent": 100 * idle_cpu / idle_s if idle_s > 0 else 0,
        "idleRequestsPerSecond": idle_reqs / idle_s if idle_s > 0 else 0,
        "getPhaseSeconds": get_s,
        "getPhaseCpuPercent": 100 * get_cpu / get_s if get_s > 0 else 0,
        "cpuSecondsTotal": cpu_seconds() - cpu_start,
        "wallSecondsTotal": time.perf_counter() - t_start,
    }
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
