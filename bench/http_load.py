"""HTTP load over loopback: registrations and probes, timed on the client side.

Run as a separate process (`python -m bench.http_load MODE ...`, one JSON object on stdout at
the end) whenever its timings must not share a GIL with other load; the functions are used
directly where a single sequential client is all that runs.

Modes:
  closed-loop  `--concurrency` clients, each sending the next registration when the last one
               answered, for `--duration` seconds (keep-alive connections)
  fixed-rate   registrations started at `--rate` per second for `--duration` seconds, whatever
               the answers take (an open-loop load, as independent users send)
  probe        GET `--path` at `--rate` per second, a new connection each time, as the kubelet
"""

import argparse
import http.client
import itertools
import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def unique_emails(prefix: str) -> Iterator[str]:
    run = uuid.uuid4().hex[:8]
    return (f"{prefix}-{run}-{number}@example.com" for number in itertools.count())


class Client:
    """One keep-alive connection; reconnects after a failure."""

    def __init__(self, base_url: str, *, timeout: float = 30) -> None:
        parts = urlsplit(base_url)
        self.host, self.port, self.timeout = parts.hostname, parts.port, timeout
        self._connection: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[float, int]:
        """(seconds, status); status 0 when the request failed at the transport level."""
        started = time.perf_counter()
        try:
            if self._connection is None:
                self._connection = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout
                )
            self._connection.request(method, path, body=body, headers=_JSON_HEADERS)
            response = self._connection.getresponse()
            response.read()
            status = response.status
            if response.will_close:
                self.close()
        except (OSError, http.client.HTTPException):
            self.close()
            status = 0
        return time.perf_counter() - started, status

    def register(self, path: str, email: str) -> tuple[float, int]:
        # No password: hashing (~0.2 s by design) would hide everything else.
        body = json.dumps({"email": email, "first_name": "Ada", "last_name": "Lovelace"})
        return self.request("POST", path, body.encode())

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def probe_once(base_url: str, path: str, *, timeout: float = 10) -> tuple[float, int]:
    """One GET on a new connection that is closed afterwards."""
    parts = urlsplit(base_url)
    started = time.perf_counter()
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        response.read()
        status = response.status
    except (OSError, http.client.HTTPException):
        status = 0
    finally:
        connection.close()
    return time.perf_counter() - started, status


def closed_loop(
    base_url: str, path: str, *, concurrency: int, duration: float, prefix: str
) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    emails = unique_emails(prefix)
    deadline = time.monotonic() + duration

    def client_loop() -> None:
        client = Client(base_url)
        while time.monotonic() < deadline:
            with lock:
                email = next(emails)
            seconds, status = client.register(path, email)
            with lock:
                latencies.append(seconds)
                statuses[status] = statuses.get(status, 0) + 1
        client.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client_loop) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return {"latencies": latencies, "statuses": statuses, "seconds": elapsed}


def fixed_rate(
    base_url: str, path: str, *, rate: float, duration: float, prefix: str, clients: int = 16
) -> dict:
    """Request i is due at start + i/rate; a pool of `clients` connections sends them. Returns
    the latency of each (measured from when it was due, so queueing in the client counts)."""
    total = int(rate * duration)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sent_at: list[float] = []
    lock = threading.Lock()
    slots = iter(range(total))
    emails = unique_emails(prefix)
    start = time.perf_counter() + 0.05

    def client_loop() -> None:
        client = Client(base_url)
        while True:
            with lock:
                slot = next(slots, None)
                email = next(emails)
            if slot is None:
                break
            due = start + slot / rate
            if (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            wall = time.time()
            seconds, status = client.register(path, email)
            late = max(0.0, time.perf_counter() - seconds - due)
            with lock:
                latencies.append(seconds + late)
                sent_at.append(wall)
                statuses[status] = statuses.get(status, 0) + 1
        client.close()

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    return {
        "latencies": latencies,
        "statuses": statuses,
        "seconds": elapsed,
        "first_sent": min(sent_at, default=0.0),
        "last_sent": max(sent_at, default=0.0),
    }


def probe_loop(base_url: str, path: str, *, rate: float, duration: float) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter()
    for slot in range(int(rate * duration)):
        if (wait := start + slot / rate - time.perf_counter()) > 0:
            time.sleep(wait)
        seconds, status = probe_once(base_url, path)
        latencies.append(seconds)
        statuses[status] = statuses.get(status, 0) + 1
    return {"latencies": latencies, "statuses": statuses, "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["closed-loop", "fixed-rate", "probe"])
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--path", required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--prefix", default="bench")
    args = parser.parse_args(argv)
    if args.mode == "closed-loop":
        result = closed_loop(
            args.url,
            args.path,
            concurrency=args.concurrency,
            duration=args.duration,
            prefix=args.prefix,
        )
    elif args.mode == "fixed-rate":
        result = fixed_rate(
            args.url, args.path, rate=args.rate, duration=args.duration, prefix=args.prefix
        )
    else:
        result = probe_loop(args.url, args.path, rate=args.rate, duration=args.duration)
    result["statuses"] = {str(k): v for k, v in result["statuses"].items()}
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
