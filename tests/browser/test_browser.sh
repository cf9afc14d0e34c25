#!/usr/bin/env bash
# test_browser.sh — the page of `sd serve` in Debian's headless Chromium (no downloaded browser, no driver
# package): start a server with the tiny model, load /?autotest=PROMPT (the page then types the prompt, clicks
# Generate and titles itself "sd: test passed" once the image is in the gallery), read the final DOM with
# --dump-dom, and save screenshots at desktop (1280x900) and phone (390x844) widths to build/. Virtual time
# (--virtual-time-budget) lets the page's timers run to the end; it waits while the server is busy.
# Run from the repository root: make test-browser.
set -euo pipefail
cd "$(dirname "$0")/../.."
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "test-browser: needs chromium (apt-get install chromium)" >&2; exit 2; }
mkdir -p build
work=$(mktemp -d /tmp/sd_browser_XXXXXX)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export XDG_CACHE_HOME=$work/cache
./sd serve -m tests/data/tiny_sd.safetensors --port 0 2>"$work/sd.log" &
server=$!
for _ in $(seq 1 200); do grep -q "listening on" "$work/sd.log" && break; sleep 0.05; done
port=$(grep -o '127.0.0.1:[0-9]*' "$work/sd.log" | head -1 | cut -d: -f2)
[ -n "$port" ] || { echo "test-browser: the server did not start:"; cat "$work/sd.log"; exit 1; }
url="http://127.0.0.1:$port/?autotest=a%20red%20cube%20at%20dusk&steps=3&width=64&height=64&seed=7"
chrome() {  # chrome ARGS...: one headless run with its own profile, bounded in time
    timeout 180 "$browser" --headless --no-sandbox --disable-gpu --no-first-run --disable-extensions \
        --user-data-dir="$work/profile-$RANDOM" --virtual-time-budget=60000 "$@" 2>>"$work/chrome.log"
}
status=0
dom=$(chrome --dump-dom "$url" || true)
if grep -q "<title>sd: test passed</title>" <<<"$dom" && grep -q 'class="card"' <<<"$dom"; then
    echo "test-browser: the page generated an image and shows it in the gallery"
else
    echo "test-browser: FAILED: $(grep -o '<title>[^<]*</title>' <<<"$dom" || echo 'no title')"
    tail -5 "$work/chrome.log"
    status=1
fi
for shot in "desktop 1280,900" "phone 390,844"; do
    set -- $shot
    rm -f "build/ui-$1.png"
    chrome --hide-scrollbars --window-size="$2" --screenshot="build/ui-$1.png" "$url" >/dev/null || true
    if [ -s "build/ui-$1.png" ]; then echo "test-browser: build/ui-$1.png ($2)"; else echo "test-browser: FAILED: no $1 screenshot"; status=1; fi
done
kill -TERM "$server"
wait "$server" || { echo "test-browser: the server exited with $?"; status=1; }
server=""
[ "$status" = 0 ] && echo "test-browser: passed"
exit $status
