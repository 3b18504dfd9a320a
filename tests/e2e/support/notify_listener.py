#!/usr/bin/env python3
"""A stand-in for systemd's notification socket: receives sd_notify datagrams on a unix socket
and appends each one to a file, one line per message (its newlines shown as ' | ')."""
import os
import socket
import sys

path, out = sys.argv[1], sys.argv[2]
if os.path.exists(path):
    os.unlink(path)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
with open(out, "a", buffering=1) as f:
    while True:
        data = sock.recv(65536).decode()
        f.write(data.strip("\n").replace("\n", " | ") + "\n")
