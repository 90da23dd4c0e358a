"""Instructions per operation, counted by valgrind (callgrind): a measure the machine's drift cannot move.

``make bench`` reports server CPU time, which on this virtual machine drifts by ±20 % within a day
and sometimes by half (node-oidc-provider's own client_credentials read 0.39 and 0.81 ms an hour
apart). Deciding whether a change made the code cheaper needs a steadier measure: this counts the
instructions the provider's own process executes per operation, which repeat to within a fraction of
a percent for the same code and inputs, whatever else the machine does.

It builds the app as production does (``profile_ops.build_app``: PostgreSQL, Redis, production argon2
parameters), drives the whole code flow through the login pages and a client_credentials grant
through the provider's own ASGI adapter (``idp.serving``) in process, with real cookies, and counts
only the requests themselves (not the load generator), leaving out the argon2 verify (its cost is
the hash's parameters, not our code). Server, sockets and kernel are not in the count.

    .venv/bin/python bench/instructions.py            # about 4 minutes; needs valgrind and gcc
    .venv/bin/python bench/instructions.py -n 10 --ops flow,cc

Prints one table: millions of instructions per operation and per request of the flow.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
HELPER_C = r"""
#include <valgrind/callgrind.h>
void cg_toggle(void) { CALLGRIND_TOGGLE_COLLECT; }
void cg_dump(const char *name) { CALLGRIND_DUMP_STATS_AT(name); }
"""
STEPS = {"1": "authorize (no session yet): the login page since 72a02bc", "2": "login page (before 72a02bc)",
         "3": "login POST (minus the argon2 verify): the code since ea9dbcc",
         "4": "authorize with the new session (before ea9dbcc)", "5": "token (code + PKCE, RS256 ID token)"}


def build_helper(directory: Path) -> Path:
    """The two callgrind client requests as a tiny shared library (the header ships with valgrind)."""
    source, library = directory / "cgt.c", directory / "cgt.so"
    source.write_text(HELPER_C)
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    return library


class Inside:
    """Runs in the process valgrind watches: the operations, collecting only what the provider does."""

    def __init__(self, helper: str) -> None:
        sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]
        import argon2
        import profile_ops
        import run as bench

        from idp.serving import adapter_for, settle_heap

        self.cg = ctypes.CDLL(helper)
        self.po, self.bench = profile_ops, bench
        self.app = profile_ops.build_app("bench_instructions")
        self.adapter = adapter_for(self.app)
        settle_heap()  # as a served worker does
        secret = self.app.config["BENCH_SECRET"]
        self.auth = ("Basic " + base64.b64encode(f"{bench.CLIENT_ID}:{secret}".encode()).decode()).encode()
        self.loop = asyncio.new_event_loop()
        self.collecting = False
        self.steps = ""
        verify = argon2.PasswordHasher.verify

        def verify_uncounted(hasher: Any, *args: Any, **kwargs: Any) -> Any:
            if self.collecting:  # the hash is left out: its cost is its parameters
                self.cg.cg_toggle()
            try:
                return verify(hasher, *args, **kwargs)
            finally:
                if self.collecting:
                    self.cg.cg_toggle()

        argon2.PasswordHasher.verify = verify_uncounted  # type: ignore[method-assign]

    def call(self, step: str, method: str, url: str, body: bytes = b"", headers: tuple = (),
             jar: dict[str, str] | None = None) -> tuple[int, dict[str, list[str]], bytes]:
        parts = urlsplit(url)
        sent = [(b"host", b"127.0.0.1:5999"), (b"user-agent", b"bench"), (b"accept", b"*/*"), *headers]
        if jar:
            sent.append((b"cookie", "; ".join(f"{k}={v}" for k, v in jar.items()).encode()))
        if body:
            sent += [(b"content-length", str(len(body)).encode()),
                     (b"content-type", b"application/x-www-form-urlencoded")]
        scope = {"type": "http", "method": method, "path": parts.path, "raw_path": parts.path.encode(),
                 "query_string": parts.query.encode(), "http_version": "1.1", "scheme": "http",
                 "server": ("127.0.0.1", 5999), "client": ("127.0.0.1", 40000), "root_path": "", "headers": sent}
        out: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            out.append(message)

        counted = step in self.steps
        if counted:
            self.collecting = True
            self.cg.cg_toggle()
        self.loop.run_until_complete(self.adapter(scope, receive, send))
        if counted:
            self.cg.cg_toggle()
            self.collecting = False
        answer: dict[str, list[str]] = collections.defaultdict(list)
        for k, v in out[0]["headers"]:
            answer[k.decode().lower()].append(v.decode())
        if jar is not None:
            for line in answer.get("set-cookie", []):
                cookie = SimpleCookie()
                cookie.load(line)
                for name, morsel in cookie.items():
                    if morsel["max-age"] == "0" or morsel["expires"].startswith("Thu, 01 Jan 1970"):
                        jar.pop(name, None)
                    else:
                        jar[name] = morsel.value
        return out[0]["status"], answer, out[1]["body"]

    def flow(self) -> None:
        po, bench, jar = self.po, self.bench, {}
        verifier, challenge = po.pkce()
        status, h, page = self.call("1", "GET", po.authorize_url(challenge), jar=jar)
        if status == 200:  # the authorization request answers with the login page itself (issue 11)
            login_url = re.search(rb'<form[^>]*method="post"[^>]*action="([^"]+)"', page).group(1).decode()
            login_url = login_url.replace("&amp;", "&")
        else:
            login = urlsplit(h["location"][0])
            login_url = f"{login.path}?{login.query}"
            status, h, page = self.call("2", "GET", login_url, jar=jar)
        token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page).group(1).decode()
        form = urlencode({"csrf_token": token, "username": "benchuser0", "password": bench.PASSWORD}).encode()
        status, h, _ = self.call("3", "POST", login_url, form, jar=jar)
        assert status in (302, 303), status
        if not h["location"][0].startswith(bench.REDIRECT):  # answered by the login POST since issue 11
            back = urlsplit(h["location"][0])
            status, h, _ = self.call("4", "GET", f"{back.path}?{back.query}", jar=jar)
            assert status in (302, 303) and h["location"][0].startswith(bench.REDIRECT), h
        code = parse_qs(urlsplit(h["location"][0]).query)["code"][0]
        redeem = urlencode({"grant_type": "authorization_code", "code": code, "redirect_uri": bench.REDIRECT,
                            "code_verifier": verifier}).encode()
        status, _, body = self.call("5", "POST", "/oauth/token", redeem, headers=((b"authorization", self.auth),))
        assert status == 200, body
        status, _, body = self.call("cc", "POST", "/oauth/token", b"grant_type=client_credentials",
                                    headers=((b"authorization", self.auth),))
        assert status == 200, body

    def run(self, n: int, ops: list[str]) -> None:
        for _ in range(20):  # warm: templates compiled, connections open, caches filled
            self.flow()
        for op in ops:
            self.steps = {"flow": "12345", "cc": "cc"}.get(op, op)
            for _ in range(n):
                self.flow()
            self.cg.cg_dump(op.encode())
        self.app.extensions["idp.store"].flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=20, help="operations counted per row")
    parser.add_argument("--ops", default="flow,cc,1,2,3,4,5", help="rows: flow, cc and the flow's steps 1-5")
    parser.add_argument("--inside", help=argparse.SUPPRESS)
    args = parser.parse_args()
    ops = args.ops.split(",")
    if args.inside:
        Inside(args.inside).run(args.n, ops)
        return 0
    for tool in ("valgrind", "gcc"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed: apt-get install valgrind gcc")
    with tempfile.TemporaryDirectory(prefix="idp-instructions-") as tmp:
        directory = Path(tmp)
        helper = build_helper(directory)
        out = directory / "callgrind.out"
        command = ["valgrind", "--tool=callgrind", "--collect-atstart=no", f"--callgrind-out-file={out}",
                   sys.executable, __file__, "-n", str(args.n), "--ops", args.ops, "--inside", str(helper)]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"the counted run failed:\n{done.stderr[-3000:]}")
        counts: dict[str, float] = {}
        for dump in directory.glob("callgrind.out.*"):
            text = dump.read_text(errors="replace")
            name = re.search(r"^desc: Trigger: Client Request: (.+)$", text, re.M)
            total = re.search(r"^totals: (\d+)", text, re.M)
            if name and total:
                counts[name.group(1).strip()] = int(total.group(1)) / args.n / 1e6
    print(f"Instructions executed by the provider's process per operation (callgrind, n={args.n}, millions; "
          "in process through the ASGI adapter; argon2 verify left out)\n")
    print("| operation | M instructions |\n| --- | ---: |")
    labels = {"flow": "whole code flow through the login pages, minus the argon2 verify",
              "cc": "client_credentials token", **{k: f"  step {k}: {v}" for k, v in STEPS.items()}}
    for op in ops:
        if counts.get(op):  # a step the flow no longer makes counts nothing
            print(f"| {labels.get(op, op)} | {counts[op]:.2f} |")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
