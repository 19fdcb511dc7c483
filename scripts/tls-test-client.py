"""A TLS client for Gatehouse's listener tests (Python's ssl module, OpenSSL underneath: a real peer).

Usage: tls-test-client.py PORT CAFILE STEPS_JSON [MAX_VERSION]   (MAX_VERSION 1.1: an old client)
Each step: {"name": SNI name, "path": "/x", "conn": "a", "headers": {...}, "wait_for": "/path/of/file", "signal": "/path"}
Connections are kept by "conn" label (keep-alive); a step with "wait_for" first waits (at most 15 s) for that
file to exist, one with "signal" creates that file after it ran. Prints one JSON line per step: status,
the peer certificate's DNS names, TLS version, ALPN, the Location header and the body (or "error").
"""
import json
import os
import socket
import ssl
import sys
import time

port, cafile, steps = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
maximum = sys.argv[4] if len(sys.argv) > 4 else None
connections = {}


def connect(name):
    context = ssl.create_default_context(cafile=cafile)
    context.set_alpn_protocols(["http/1.1"])
    if maximum == "1.1":
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return context.wrap_socket(raw, server_hostname=name)


def read_response(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    length = int(fields.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, fields, body[:length].decode("utf-8", "replace")


for step in steps:
    if step.get("wait_for"):
        deadline = time.time() + 15
        while not os.path.exists(step["wait_for"]) and time.time() < deadline:
            time.sleep(0.01)
    result = {}
    try:
        label = step.get("conn", step["name"])
        if label not in connections:
            connections[label] = connect(step["name"])
        sock = connections[label]
        extra = "".join(f"{k}: {v}\r\n" for k, v in step.get("headers", {}).items())
        sock.sendall(f"GET {step['path']} HTTP/1.1\r\nHost: {step['name']}\r\n{extra}\r\n".encode())
        status, fields, body = read_response(sock)
        cert = sock.getpeercert()
        result = {
            "status": status,
            "names": [value for kind, value in cert.get("subjectAltName", ()) if kind == "DNS"],
            "version": sock.version(),
            "alpn": sock.selected_alpn_protocol(),
            "location": fields.get("location"),
            "body": body,
        }
    except Exception as error:  # reported, the test decides
        result = {"error": f"{type(error).__name__}: {error}"}
    print(json.dumps(result), flush=True)
    if step.get("signal"):
        open(step["signal"], "w").close()
