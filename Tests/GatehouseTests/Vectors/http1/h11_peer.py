#!/usr/bin/python3
"""Differential peer for GatehouseHTTP1: parses each request with h11 (python3-h11) as a server would.

stdin: one hex-encoded request per line. stdout: one JSON object per line, in order:
  {"verdict": "accept", "method", "target", "headers": [[name, value], ...], "body": hex}
  {"verdict": "refuse", "error": "..."}   or   {"verdict": "incomplete"}
Only the first request of each input is looked at.
"""
import json
import sys

import h11


def parse(data):
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    request = None
    body = b""
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as error:
            return {"verdict": "refuse", "error": str(error)}
        if event is h11.NEED_DATA or event is h11.PAUSED:
            return {"verdict": "incomplete"}
        if isinstance(event, h11.ConnectionClosed):
            return {"verdict": "incomplete"}
        if isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return {
                "verdict": "accept",
                "method": request.method.decode("latin-1"),
                "target": request.target.decode("latin-1"),
                "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in request.headers.raw_items()],
                "body": body.hex(),
            }


for line in sys.stdin:
    print(json.dumps(parse(bytes.fromhex(line.strip()))), flush=True)
