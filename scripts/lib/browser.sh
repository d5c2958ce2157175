# Pieces of scripts/browser-test: Debian's Chromium, a Python venv with Playwright and
# pytest (pinned, under target/), and a `liner up` on a port the kernel picks, whose
# address is read from its banner (the venv and `liner up` serve scripts/fuzz-api too).
# Sourced after scripts/lib/backing-services.sh (for log, apt_install and the
# LINER_CLEANUP list run at exit).

BROWSER_VENV=target/browser-venv
# Playwright drives the system Chromium over CDP; its own browser download is never used.
BROWSER_PY_PACKAGES=(playwright==1.65.2 pytest==9.2.0)
CHROMIUM=/usr/bin/chromium

ensure_chromium() {
  [[ -x $CHROMIUM ]] || apt_install chromium
  [[ -x $CHROMIUM ]] || { log "no $CHROMIUM after installing chromium"; return 1; }
}

ensure_browser_venv() {
  # Playwright's browsers are not downloaded: the tests launch $CHROMIUM.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 ensure_venv "$BROWSER_VENV" "${BROWSER_PY_PACKAGES[@]}"
}

# ensure_venv DIR PACKAGE==VERSION...: a venv at DIR with exactly these pins (remade when
# the list changes; a stamp file remembers it).
ensure_venv() {
  local dir=$1
  shift
  local stamp="$dir/.installed" want="$*"
  if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then return; fi
  log "creating $dir ($want)"
  python3 -m venv "$dir" || { apt_install python3-venv && python3 -m venv "$dir"; }
  "$dir/bin/pip" install -q --disable-pip-version-check "$@"
  echo "$want" >"$stamp"
}

http_ok() {
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" >/dev/null 2>&1
}

# Starts `liner up` on 127.0.0.1:0 with a fresh data dir; sets LINER_BROWSER_URL to the
# address its banner names and waits until the gateway answers /readyz. Every person the
# tests sign up comes from loopback, more than the hourly sign-ups per address allow
# (that limit has its own test in crates/liner/tests/review_api.rs): no limit here.
start_liner_for_browser() {
  local bin=$1 dir pid url=""
  dir=$(mktemp -d /tmp/liner-browser.XXXXXX)
  # Adaptive slow mode with thresholds a browser test can reach in a few seconds
  # (test_rooms_moderation.py); no other browser test sends 10 lines within 3 s to one room.
  "$bin" up --listen 127.0.0.1:0 --data-dir "$dir/data" --registrations-per-address 0 \
    --auto-slow-mode-messages 10 --auto-slow-mode-window-secs 3 --auto-slow-mode-secs 20 --auto-slow-mode-hold-secs 2 >"$dir/stdout" 2>"$dir/stderr" &
  pid=$!
  LINER_CLEANUP+=("kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf $dir")
  for _ in $(seq 600); do
    url=$(sed -n 's#^Liner is up: \(http://[^/ ]*\)/.*#\1#p' "$dir/stdout" | head -n 1)
    [[ -n $url ]] && break
    kill -0 "$pid" 2>/dev/null || { log "liner up exited:"; tail -n 20 "$dir/stderr" >&2; return 1; }
    sleep 0.1
  done
  [[ -n $url ]] || { log "liner up printed no banner within 60 s"; tail -n 20 "$dir/stderr" >&2; return 1; }
  for _ in $(seq 300); do
    http_ok "$url/readyz" && break
    sleep 0.1
  done
  http_ok "$url/readyz" || { log "$url/readyz never answered 200"; return 1; }
  export LINER_BROWSER_URL=$url
  export LINER_BROWSER_SERVER_LOG=$dir/stderr
  log "liner up is serving $url (logs: $dir)"
}
