"""What the benchmark scripts share: wrk in its own process, and waiting for a server.

The referee's method (../shared/referee/README.md): the load generator runs in its own
process, alternating with the baseline in every round, medians of >= 3 rounds.
"""

import os
import re
import resource
import shutil
import subprocess
import sys
import time
import urllib.request


def log(tag, msg):
    print(f"[{tag}] {msg}", file=sys.stderr, flush=True)


def ensure_wrk():
    """Installs wrk (Debian package) when missing."""
    if shutil.which("wrk"):
        return
    log("bench", "installing wrk (apt-get)")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), stdout=subprocess.DEVNULL)


def wait_http(url, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as res:
                if res.status < 500:
                    return
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def to_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url, threads, connections, seconds, script=None, env=None):
    """One wrk run: (requests/s, p99 ms, wrk's own CPU in cores); any non-2xx answer
    fails the benchmark."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script:
        cmd += ["-s", str(script)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    out = subprocess.run(cmd + [url], check=True, capture_output=True, text=True,
                         env=dict(os.environ, **(env or {}))).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / (time.monotonic() - started)
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    p99 = re.search(r"\s99%\s+([0-9.]+)(us|ms|s)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"{url}: {errors.group(1)} non-2xx answers\n{out}")
    return rps, to_ms(*p99.groups()), cpu
