"""What the benchmark scripts share: wrk in its own process, and waiting for a server.

The referee's method (../shared/referee/README.md): the load generator runs in its own
process, alternating with the baseline in every round, medians of >= 3 rounds.
"""

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


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


def stop(procs, timeout=15):
    """SIGTERM to each process, then waits for each; one that outstays `timeout` is killed."""
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


# The gateway benchmarks' legs (scripts/bench-gateway, scripts/profile-gateway): the
# referee's bare-http with a 2 KB answer on :18080, and what fronts it.
BARE_HTTP_URL = "http://127.0.0.1:18080/"


def bare_http_command(bare_http):
    return [str(bare_http), "--addr", "127.0.0.1:18080", "--size", "2048"]


def floor_proxy_command(floor_proxy, port=18083, per_core=None, *extra):
    """A floor in front of bare-http: `floor-proxy` (hyper's server and the gateway's upstream
    connections only) or `codec-floor` (hand-written, `extra` its flags), a single-threaded
    runtime per core unless `per_core` says how many."""
    return [str(floor_proxy), "--listen", f"127.0.0.1:{port}", "--upstream", "127.0.0.1:18080",
            "--per-core", str(per_core or os.cpu_count() or 1), *extra]


def gateway_command(liner, port, access_log=False):
    """The gateway in front of bare-http, with what bare-http cannot take part in off:
    rate limits, edge auth (it issues no tokens), and the access log unless asked."""
    return [str(liner), "gateway", "--listen", f"127.0.0.1:{port}", "--upstream", "review=http://127.0.0.1:18080",
            "--rate-limit-ip", "0", "--rate-limit-user", "0", "--edge-auth", "false",
            "--access-log", "true" if access_log else "false"]


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


def plot(path, title, x_label, y_label, series):
    """Writes a small SVG scatter plot, throughput (x) against p99 (y), one colour per
    system and one point per run, so a reader sees the spread of the rounds as well as
    where each system sits. `series` maps a name to a list of (x, y) points. Plain SVG
    by hand: one picture per scenario does not justify installing a plotting stack."""
    width, height, left, bottom, top, right = 560, 340, 70, 50, 40, 150
    points = [pt for pts in series.values() for pt in pts]
    x_max = max(x for x, _ in points) * 1.1 or 1
    y_max = max(y for _, y in points) * 1.1 or 1

    def sx(x):
        return left + x / x_max * (width - left - right)

    def sy(y):
        return height - bottom - y / y_max * (height - top - bottom)

    colours = ["#1b6ac9", "#d1495b", "#2e933c", "#8a4fff"]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           f'font-size="12"><rect width="100%" height="100%" fill="white"/>',
           f'<text x="{width / 2 - right / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>',
           f'<line x1="{left}" y1="{sy(0)}" x2="{width - right}" y2="{sy(0)}" stroke="black"/>',
           f'<line x1="{left}" y1="{sy(0)}" x2="{left}" y2="{top}" stroke="black"/>',
           f'<text x="{(left + width - right) / 2}" y="{height - 12}" text-anchor="middle">{x_label}</text>',
           f'<text x="16" y="{(top + height - bottom) / 2}" text-anchor="middle" '
           f'transform="rotate(-90 16 {(top + height - bottom) / 2})">{y_label}</text>']
    for i in range(5):
        xv, yv = x_max * i / 4, y_max * i / 4
        x_text = f"{xv:,.0f}" if x_max >= 50 else f"{xv:.2g}"
        out.append(f'<text x="{sx(xv)}" y="{sy(0) + 16}" text-anchor="middle">{x_text}</text>')
        out.append(f'<text x="{left - 6}" y="{sy(yv) + 4}" text-anchor="end">{yv:.3g}</text>')
    for i, (name, pts) in enumerate(series.items()):
        colour = colours[i % len(colours)]
        out += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="5" fill="{colour}" fill-opacity="0.7"/>' for x, y in pts]
        out.append(f'<circle cx="{width - right + 16}" cy="{top + 10 + 20 * i}" r="5" fill="{colour}"/>')
        out.append(f'<text x="{width - right + 26}" y="{top + 14 + 20 * i}">{name}</text>')
    out.append("</svg>")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(out) + "\n")
