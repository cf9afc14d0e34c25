#!/usr/bin/env bash
# test_cluster.sh — several `sd serve` instances behind nginx, as the README's scale-out example: two
# instances with the tiny model and nginx (least_conn upstream) on free loopback ports, a bounded burst of
# txt2img requests through nginx, then checks: every request answered 200 with one image, both instances
# served some (nginx's log of upstream addresses), and both instances stop with exit status 0 on SIGTERM.
# Needs Debian's nginx and curl. Run from the repository root: make test-cluster.
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in nginx curl; do
    command -v "$tool" >/dev/null || { echo "test-cluster: needs $tool (apt-get install $tool)" >&2; exit 2; }
done
BURST=${BURST:-16}
work=$(mktemp -d /tmp/sd_cluster_XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
export XDG_CACHE_HOME=$work/cache

# Two instances on ports the kernel picks (--port 0 prints the port).
ports=()
for i in 1 2; do
    ./sd serve -m tests/data/tiny_sd.safetensors --port 0 --outdir "$work/out$i" 2>"$work/sd$i.log" &
    pids+=($!)
    for _ in $(seq 1 200); do grep -q "listening on" "$work/sd$i.log" && break; sleep 0.05; done
    port=$(grep -o '127.0.0.1:[0-9]*' "$work/sd$i.log" | head -1 | cut -d: -f2)
    [ -n "$port" ] || { echo "test-cluster: instance $i did not start:"; cat "$work/sd$i.log"; exit 1; }
    ports+=("$port")
done

# nginx on a free port: try a few at random.
user_line=""
[ "$(id -u)" = 0 ] && user_line="user root;"
for attempt in $(seq 1 20); do
    lb=$((20000 + RANDOM % 40000))
    cat >"$work/nginx.conf" <<CONF
$user_line
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 256; }
http {
    log_format upstream '\$status \$upstream_addr';
    access_log $work/access.log upstream;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    fastcgi_temp_path $work/fastcgi;
    uwsgi_temp_path $work/uwsgi;
    scgi_temp_path $work/scgi;
    upstream sd {
        least_conn;
        server 127.0.0.1:${ports[0]};
        server 127.0.0.1:${ports[1]};
        keepalive 8;
    }
    server {
        listen 127.0.0.1:$lb;
        client_max_body_size 32m;
        location / {
            proxy_pass http://sd;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout 600s;
        }
    }
}
CONF
    if nginx -p "$work" -c "$work/nginx.conf" 2>"$work/nginx-start.log"; then break; fi
    lb=""
done
[ -n "$lb" ] || { echo "test-cluster: nginx did not start:"; cat "$work/nginx-start.log"; exit 1; }
for _ in $(seq 1 100); do [ -f "$work/nginx.pid" ] && break; sleep 0.05; done

# The burst: BURST requests at once, each a small job with its own seed.
for i in $(seq 1 "$BURST"); do
    curl -s -o "$work/r$i.json" -w '%{http_code}\n' --max-time 300 -H 'Content-Type: application/json' \
        -d "{\"prompt\":\"a red cube\",\"steps\":3,\"width\":64,\"height\":64,\"seed\":$i}" \
        "http://127.0.0.1:$lb/sdapi/v1/txt2img" >"$work/code$i" &
done
wait_for=$(jobs -p | grep -v -F -x -f <(printf '%s\n' "${pids[@]}") || true)
for j in $wait_for; do wait "$j" || true; done

ok=0
for i in $(seq 1 "$BURST"); do
    code=$(cat "$work/code$i" 2>/dev/null || echo none)
    if [ "$code" = 200 ] && grep -q "\"all_seeds\\\\\":\[$i\]" "$work/r$i.json"; then
        ok=$((ok + 1))
    else
        echo "test-cluster: request $i got HTTP $code: $(head -c 300 "$work/r$i.json" 2>/dev/null)"
    fi
done
served=()
for p in "${ports[@]}"; do served+=("$(grep -c "127.0.0.1:$p" "$work/access.log" || true)"); done
echo "test-cluster: $ok of $BURST answered through nginx; instance 1 served ${served[0]}, instance 2 served ${served[1]}"
status=0
[ "$ok" = "$BURST" ] || status=1
[ "${served[0]}" -gt 0 ] && [ "${served[1]}" -gt 0 ] || { echo "test-cluster: one instance served nothing"; status=1; }

# Both stop cleanly.
for k in 0 1; do
    kill -TERM "${pids[$k]}"
    if wait "${pids[$k]}"; then :; else echo "test-cluster: instance $((k + 1)) exited with $?"; status=1; fi
done
pids=()
[ "$status" = 0 ] && echo "test-cluster: passed"
exit $status
