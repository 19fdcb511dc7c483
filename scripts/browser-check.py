#!/usr/bin/python3
"""Drives headless Chromium through the `gatehouse demo` newcomer flow and fails loudly if it breaks.

Usage: scripts/browser-check.sh (starts the demo, installs chromium and websocket-client if needed).
Flow: open /dashboard -> (dev-browser handshake through /__clerk) -> redirected to /sign-in -> click "Sign in
as Ada Admin" -> dashboard shows user_admin -> /admin is allowed -> the session token expires (/dev/expire-session,
"back from a coffee break") -> the next page load goes through Clerk's handshake and lands on /dashboard signed
in, never on the sign-in page; clear cookies, sign in as Mo Member -> /admin is 403.
Screenshots land in .build/browser-check/.
"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket  # websocket-client

BASE = os.environ.get("GATEHOUSE_URL", "http://127.0.0.1:8080")
OUT = os.path.join(os.path.dirname(__file__), "..", ".build", "browser-check")


class Browser:
    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="gatehouse-chromium-")
        port = 9333
        self.proc = subprocess.Popen(
            ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--remote-debugging-port={port}", f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json"))
                page = next(t for t in targets if t["type"] == "page")
                break
            except Exception:
                time.sleep(0.1)
        else:
            raise SystemExit("chromium did not start")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=10)
        self.next_id = 0
        self.documents = []  # every document URL requested, redirects included
        self.call("Page.enable")
        self.call("Network.enable")

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(message["error"])
                return message.get("result", {})
            if message.get("method") == "Network.requestWillBeSent" and message["params"].get("type") == "Document":
                self.documents.append(message["params"]["request"]["url"])
            if message.get("method") == "Network.responseReceived":
                response = message["params"]["response"]
                if message["params"].get("type") == "Document":
                    self.last_status = response["status"]

    def wait_load(self):
        deadline = time.time() + 10
        while time.time() < deadline:
            state = self.evaluate("document.readyState")
            if state == "complete":
                time.sleep(0.2)
                if self.evaluate("document.readyState") == "complete":
                    return
            time.sleep(0.1)

    def goto(self, url):
        self.last_status = None
        self.call("Page.navigate", url=url)
        self.wait_load()
        self.call("Runtime.evaluate", expression="1")  # drain pending events (status)
        return self.last_status

    def evaluate(self, expression):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def click(self, selector):
        self.last_status = None
        self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")
        time.sleep(0.3)
        self.wait_load()
        self.call("Runtime.evaluate", expression="1")

    def screenshot(self, name):
        os.makedirs(OUT, exist_ok=True)
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path = os.path.join(OUT, name + ".png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def close(self):
        self.proc.terminate()


def check(condition, message):
    print(("ok   " if condition else "FAIL ") + message)
    if not condition:
        raise SystemExit(1)


def main():
    b = Browser()
    try:
        b.goto(BASE + "/dashboard")
        url = b.evaluate("location.href")
        check("/sign-in?redirect_url=" in url, f"signed-out /dashboard redirects to sign-in ({url})")
        b.screenshot("1-sign-in")
        b.click("#sign-in-admin")
        url = b.evaluate("location.href")
        body = b.evaluate("document.body.innerText")
        check(url == BASE + "/dashboard", f"after signing in as the admin the browser is back on /dashboard ({url})")
        check("user_admin" in body, "the dashboard shows the identity headers for user_admin")
        b.screenshot("2-dashboard-admin")
        status = b.goto(BASE + "/admin")
        check(status == 200 and "org:admin" in b.evaluate("document.body.innerText"), f"the admin opens /admin (status {status})")
        b.screenshot("3-admin-as-admin")
        b.documents = []
        b.goto(BASE + "/dev/expire-session")
        url = b.evaluate("location.href")
        body = b.evaluate("document.body.innerText")
        hops = [d.split("?")[0].replace(BASE, "") for d in b.documents]
        check(url == BASE + "/dashboard" and "user_admin" in body,
              f"with an expired session token the returning admin lands on /dashboard signed in ({url})")
        handshakes = hops.count("/__clerk/v1/client/handshake")
        check(handshakes == 1 and any("__clerk_handshake=" in d for d in b.documents),
              f"it went through exactly one handshake via the Frontend API proxy ({handshakes}: {' -> '.join(hops)})")
        check(not any(h.startswith("/sign-in") for h in hops), "and never saw the sign-in page")
        b.screenshot("3b-dashboard-after-handshake")
        b.call("Network.clearBrowserCookies")
        b.goto(BASE + "/admin")
        check("/sign-in" in b.evaluate("location.href"), "after clearing cookies /admin asks to sign in again")
        b.click("#sign-in-member")
        url = b.evaluate("location.href")
        text = b.evaluate("document.body.innerText")
        check(b.last_status == 403 and "forbidden" in text, f"the member gets 403 on /admin (status {b.last_status}, {url})")
        b.screenshot("4-admin-as-member")
        status = b.goto(BASE + "/dashboard")
        check(status == 200 and "user_member" in b.evaluate("document.body.innerText"), "the member opens /dashboard")
        print("screenshots in", os.path.abspath(OUT))
    finally:
        b.close()


if __name__ == "__main__":
    main()
