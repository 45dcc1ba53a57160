"""Benchmark `replyrl serve`: N requests from C concurrent clients against a local server.

Starts `replyrl serve` on 127.0.0.1 (a free port, nothing else is contacted), sends warm-up
requests, then `--requests` suggestions from `--clients` threads, and prints p50/p95 latency, the
number of 503s (queue full: expected 0 while clients <= 1 + queue size), any other failure, and the
server's RSS after warm-up vs at the end. Exits 1 when a request fails other than with 503 or RSS
grew more than `--max-rss-growth`.

    .venv/bin/python benchmarks/bench_serve.py                 # 40 requests, 4 clients
    .venv/bin/python benchmarks/bench_serve.py --queue-size 1  # provoke 503s
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

TWEETS = [
    "Just shipped my first open source library!",
    "Is it just me or are meetings getting longer every year?",
    "Hot take: tabs are better than spaces.",
    "Finally finished my thesis after four years. Time to sleep.",
    "What's the best book you read this year?",
    "Our team hit 10k users today, thank you all!",
    "Coffee or tea for a long night of debugging?",
    "The new park downtown is beautiful this time of year.",
]


def rss_mb(pid: int) -> float:
    """Resident set size of `pid` in MB (Linux /proc; no extra dependency)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: argparse.Namespace, workdir: Path) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    exe = Path(sys.executable).with_name("replyrl")
    cmd = [
        str(exe),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--feedback",
        str(workdir / "feedback.jsonl"),
        "--queue-size",
        str(args.queue_size),
        "--max-new-tokens",
        str(args.max_new_tokens),
        "--oversample",
        str(args.oversample),
    ]
    if args.model:
        cmd += ["--model", args.model]
    if args.reward:
        cmd += ["--reward", args.reward]
    log = workdir / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + args.startup_timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return proc, url, log
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    sys.exit(f"server did not come up within {args.startup_timeout} s; log: {log}")


def percentile(xs: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100])."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=40, help="Measured requests in total.")
    p.add_argument("--clients", type=int, default=4, help="Concurrent clients (threads).")
    p.add_argument("--k", type=int, default=2, help="Replies per request.")
    p.add_argument("--temperature", type=float, default=0.9)
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=24,
        help="Token budget per reply (keeps a CPU run short).",
    )
    p.add_argument("--oversample", type=float, default=3.0, help="Candidates per requested reply.")
    p.add_argument("--queue-size", type=int, default=4, help="Server queue size (503 beyond it).")
    p.add_argument(
        "--warmup", type=int, default=3, help="Sequential warm-up requests before measuring."
    )
    p.add_argument("--model", default=None)
    p.add_argument("--reward", default=None)
    p.add_argument(
        "--max-rss-growth", type=float, default=0.10, help="Allowed RSS growth after warm-up."
    )
    p.add_argument("--startup-timeout", type=float, default=300)
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        t0 = time.perf_counter()
        proc, url, log = start_server(args, Path(tmp))
        startup = time.perf_counter() - t0
        try:
            with httpx.Client(timeout=900) as c:
                for i in range(args.warmup):
                    r = c.post(
                        url + "/api/suggest",
                        json={
                            "tweet": TWEETS[i % len(TWEETS)],
                            "k": args.k,
                            "temperature": args.temperature,
                            "seed": i,
                        },
                    )
                    r.raise_for_status()
            rss_warm = rss_mb(proc.pid)
            results: list[tuple[float, int, str]] = []
            lock = threading.Lock()

            def client(cid: int) -> None:
                with httpx.Client(timeout=900) as c:
                    for j in range(cid, args.requests, args.clients):
                        body = {
                            "tweet": TWEETS[j % len(TWEETS)],
                            "k": args.k,
                            "temperature": args.temperature,
                            "seed": j,
                        }
                        t = time.perf_counter()
                        try:
                            r = c.post(url + "/api/suggest", json=body)
                            ok = r.status_code != 200 or len(r.json()["suggestions"]) >= 1
                            status, note = r.status_code, "" if ok else "no suggestions"
                        except httpx.HTTPError as e:
                            status, note = -1, f"{type(e).__name__}: {e}"
                        with lock:
                            results.append((time.perf_counter() - t, status, note))

            t1 = time.perf_counter()
            threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t1
            rss_end = rss_mb(proc.pid)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()

    ok = [lat for lat, st, note in results if st == 200 and not note]
    n503 = sum(1 for _, st, _ in results if st == 503)
    other = [(st, note) for _, st, note in results if not (st == 200 and not note) and st != 503]
    growth = (rss_end - rss_warm) / rss_warm
    print(
        f"replyrl serve benchmark: {args.requests} requests, {args.clients} clients, k={args.k}, "
        f"oversample={args.oversample}, max_new_tokens={args.max_new_tokens}, queue_size={args.queue_size}"
    )
    print(f"  server start-up (model load)  {startup:8.1f} s")
    print(f"  ok / 503 / other failures     {len(ok)} / {n503} / {len(other)}")
    if ok:
        print(
            f"  latency p50 / p95 / max       {percentile(ok, 50):8.2f} / {percentile(ok, 95):.2f} / {max(ok):.2f} s"
        )
        print(
            f"  throughput                    {len(ok) / wall:8.3f} requests/s ({wall:.1f} s wall)"
        )
    print(f"  RSS after warm-up / at end    {rss_warm:8.1f} / {rss_end:.1f} MB ({growth:+.1%})")
    print(
        f"  machine: {os.cpu_count()} CPUs, load average at end {os.getloadavg()[0]:.1f} "
        "(other processes share the CPUs: latency scales with it)"
    )
    failed = False
    if other:
        print(f"FAIL: {len(other)} requests failed other than with 503: {other[:5]}")
        failed = True
    if growth > args.max_rss_growth:
        print(f"FAIL: RSS grew {growth:.1%} (> {args.max_rss_growth:.0%})")
        failed = True
    print("FAIL" if failed else "OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
