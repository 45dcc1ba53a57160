"""Benchmark `replyrl suggest` and `replyrl serve`: latency after start-up, and the server under load.

Three phases (`--phases`, default all):

- `suggest`: what `replyrl suggest -k 5` spends after loading — the model, encoder and reward are
  loaded once in this process (start-up timed apart), then `--latency-requests` tweets are answered
  one after another with k = 5 (48 new tokens, the CLI defaults); prints p50/p95 (target p50 <= 8 s).
- `serve`: `replyrl serve` on 127.0.0.1 (a free port, nothing else is contacted), one client asking
  k = 3 one request at a time, as a person on the page does; p50/p95 (target p50 <= 6 s).
- `load`: `--requests` suggestions from `--clients` threads against the same server: p50/p95 with
  queueing, the number of 503s (queue full: expected 0 while clients <= 1 + queue size), any other
  failure, and the server's RSS after warm-up vs at the end. Exits 1 when a request fails other
  than with 503 or RSS grew more than `--max-rss-growth`.

    .venv/bin/python benchmarks/bench_serve.py                             # all three phases
    .venv/bin/python benchmarks/bench_serve.py --phases load --queue-size 1  # provoke 503s
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


def bench_suggest(args: argparse.Namespace) -> list[float]:
    """In-process `suggest` latency with k = `--suggest-k` after loading (the CLI's work)."""
    from replyrl.serve.loading import load_suggester
    from replyrl.serve.suggest import SuggestConfig

    t0 = time.perf_counter()
    suggester = load_suggester(
        args.model, args.reward, max_new_tokens=args.max_new_tokens, cfg=SuggestConfig()
    )
    print(f"  suggest start-up (load model, encoder, reward)  {time.perf_counter() - t0:8.1f} s")
    suggester.suggest(TWEETS[-1], k=args.suggest_k, seed=99)  # first call: allocator, caches
    lat = []
    for i in range(args.latency_requests):
        r = suggester.suggest(TWEETS[i % len(TWEETS)], k=args.suggest_k, seed=i)
        lat.append(r.seconds)
        print(f"    {r.seconds:6.2f} s  {r.n_sampled} sampled, {r.rounds} round(s)")
    return lat


def bench_serve_sequential(url: str, args: argparse.Namespace) -> list[float]:
    """One client, one request at a time, k = `--serve-k`: what a person on the page waits."""
    lat = []
    with httpx.Client(timeout=900) as c:
        for i in range(args.latency_requests):
            body = {"tweet": TWEETS[i % len(TWEETS)], "k": args.serve_k, "seed": i}
            t = time.perf_counter()
            c.post(url + "/api/suggest", json=body).raise_for_status()
            lat.append(time.perf_counter() - t)
            print(f"    {lat[-1]:6.2f} s")
    return lat


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--phases", default="suggest,serve,load", help="Comma-separated: suggest, serve, load."
    )
    p.add_argument("--latency-requests", type=int, default=8, help="Requests per latency phase.")
    p.add_argument("--suggest-k", type=int, default=5, help="k of the suggest phase.")
    p.add_argument("--serve-k", type=int, default=3, help="k of the sequential serve phase.")
    p.add_argument("--requests", type=int, default=20, help="Measured requests in total (load).")
    p.add_argument("--clients", type=int, default=4, help="Concurrent clients (threads).")
    p.add_argument("--k", type=int, default=2, help="Replies per request (load).")
    p.add_argument("--temperature", type=float, default=0.9)
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=48,
        help="Token budget per reply (48: the suggest/serve default).",
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
    phases = {x.strip() for x in args.phases.split(",") if x.strip()}
    if not phases or phases - {"suggest", "serve", "load"}:
        p.error(f"--phases takes suggest, serve, load; got {args.phases!r}")
    print(
        f"machine: {os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.1f} "
        "(other processes share the CPUs: latency scales with it)"
    )
    if "suggest" in phases:
        print(f"suggest, k={args.suggest_k}, {args.max_new_tokens} new tokens, in-process:")
        lat = bench_suggest(args)
        print(
            f"  suggest latency p50 / p95 / max  {percentile(lat, 50):6.2f} / "
            f"{percentile(lat, 95):.2f} / {max(lat):.2f} s (target p50 <= 8 s)"
        )
    if not phases & {"serve", "load"}:
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        t0 = time.perf_counter()
        proc, url, log = start_server(args, Path(tmp))
        startup = time.perf_counter() - t0
        print(f"  server start-up (model load)  {startup:8.1f} s")
        try:
            if "serve" in phases:
                print(f"serve, k={args.serve_k}, one client, one request at a time:")
                seq = bench_serve_sequential(url, args)
                print(
                    f"  serve latency p50 / p95 / max  {percentile(seq, 50):6.2f} / "
                    f"{percentile(seq, 95):.2f} / {max(seq):.2f} s (target p50 <= 6 s)"
                )
            if "load" not in phases:
                return 0
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
        f"load: {args.requests} requests, {args.clients} clients, k={args.k}, "
        f"oversample={args.oversample}, max_new_tokens={args.max_new_tokens}, queue_size={args.queue_size}"
    )
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
