#!/usr/bin/env python3
"""bench/idle_conns.py - memory a proxy spends per idle client connection (bench/proxy.sh).

    idle_conns.py --port PORT --pid PID [--pid PID...] [--conns N] [--mode used|fresh]

Reads the memory of the processes PID (Rss, Pss and Private_Dirty of /proc/PID/smaps_rollup,
summed), opens N connections to 127.0.0.1:PORT, waits until the proxy has accepted them all and
then SETTLE seconds more, reads the memory again and closes them. --mode used (the default): each
connection first completes one keep-alive GET (HTTP/1.1, X-Forwarded-For XFF), so the proxy holds
what a used, idle keep-alive connection costs; --mode fresh: the connections send nothing.

Prints one line: "mode conns rss_before rss_after pss_before pss_after dirty_before dirty_after
closed" (bytes; closed: connections the proxy had closed by the time of the second reading, which
makes the figure worthless if not 0). Every wait is bounded; exits 1 on failure.
"""
import argparse
import select
import socket
import sys
import time


def memory(pids):
    """(rss, pss, private_dirty) in bytes, summed over <pids>."""
    total = {"Rss": 0, "Pss": 0, "Private_Dirty": 0}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    key, _, rest = line.partition(":")
                    if key in total:
                        total[key] += int(rest.split()[0]) * 1024
        except FileNotFoundError:  # a kernel before 4.14: only the RSS
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total["Rss"] += int(line.split()[1]) * 1024
    return total["Rss"], total["Pss"], total["Private_Dirty"]


def not_accepted(port):
    """Connections to <port> the proxy has yet to accept: in its listener's accept queue, or
    held back by the kernel (SYN_RECV) until they send something or a second has passed, when
    the listener defers accepting (TCP_DEFER_ACCEPT, gslbd's default)."""
    waiting = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, state, queues = fields[1], fields[3], fields[4]
            if int(local.split(":")[1], 16) != port:
                continue
            if state == "0A":
                waiting += int(queues.split(":")[1], 16)
            elif state == "03":
                waiting += 1
    return waiting


def read_response(sock, deadline):
    """Reads one HTTP/1.1 response (Content-Length or chunked body); returns the status."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += recv_some(sock, deadline)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip().lower()
    if "chunked" in fields.get("transfer-encoding", ""):
        while not body.endswith(b"0\r\n\r\n"):  # our origins send no trailers
            body += recv_some(sock, deadline)
    else:
        length = int(fields.get("content-length", "-1"))
        if length < 0:
            raise RuntimeError("a response without Content-Length or chunked body")
        while len(body) < length:
            body += recv_some(sock, deadline)
    if "close" in fields.get("connection", ""):
        raise RuntimeError("the proxy closes the connection after the request")
    return status


def recv_some(sock, deadline):
    sock.settimeout(max(0.01, deadline - time.monotonic()))
    chunk = sock.recv(65536)
    if not chunk:
        raise RuntimeError("connection closed during the response")
    return chunk


def closed_count(socks):
    """Connections that are readable now: closed by the proxy (it sends nothing unasked)."""
    closed = 0
    for i in range(0, len(socks), 500):
        poll = select.poll()
        for s in socks[i : i + 500]:
            poll.register(s, select.POLLIN | select.POLLRDHUP)
        closed += len(poll.poll(0))
    return closed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, action="append", required=True)
    ap.add_argument("--conns", type=int, default=2000)
    ap.add_argument("--mode", choices=("used", "fresh"), default="used")
    ap.add_argument("--xff", default="81.2.69.142")
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=120.0, help="for the whole opening phase")
    args = ap.parse_args()

    request = (
        "GET / HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: idle_conns\r\n"
        f"X-Forwarded-For: {args.xff}\r\n\r\n"
    ).encode()
    before = memory(args.pid)
    deadline = time.monotonic() + args.timeout
    socks = []
    try:
        for _ in range(args.conns):
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(socks)} connections opened in {args.timeout} s")
            s = socket.create_connection(("127.0.0.1", args.port), timeout=5)
            socks.append(s)
            if args.mode == "used":
                s.settimeout(5)
                s.sendall(request)
                status = read_response(s, min(deadline, time.monotonic() + 5))
                if status != 200:
                    raise RuntimeError(f"status {status} on connection {len(socks)}")
        while not_accepted(args.port) > 0:
            if time.monotonic() > deadline:
                raise RuntimeError("the proxy did not accept every connection")
            time.sleep(0.05)
        time.sleep(args.settle)
        after = memory(args.pid)
        closed = closed_count(socks)
    except (OSError, RuntimeError, ValueError, IndexError) as e:
        print(f"idle_conns: {args.mode}: {e}", file=sys.stderr)
        return 1
    finally:
        for s in socks:
            s.close()
    print(
        args.mode,
        args.conns,
        before[0],
        after[0],
        before[1],
        after[1],
        before[2],
        after[2],
        closed,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
