#!/usr/bin/env bash
# Load bench: Menshen against nginx as a plain reverse proxy, both in front of the same tiny
# upstream, on loopback, driven by wrk.
#
#   benches/load.sh                      # 10 s per proxy
#   DURATION=5s benches/load.sh
#
# Environment (all optional):
#   DURATION     wrk run length per proxy (default 10s)
#   WARMUP       wrk warm-up run before each measured run (default 2s; 0 to skip)
#   CONNECTIONS  wrk connections (default 50)
#   WRK_THREADS  wrk threads (default 1)
#   REDIS_URL    Redis for Menshen's sessions (default redis://127.0.0.1:6379/0)
#   MENSHEN_BIN  use this binary instead of building target/release/menshen
#   NO_PIN=1     do not pin processes to CPUs with taskset
#
# What runs:
#   upstream  nginx, 1 worker, `return 200 "ok\n"` (no disk, no access log)
#   nginx     nginx, 1 worker, proxy_pass to the upstream through a keepalive pool
#   menshen   menshen run, [server] threads = 1, Redis sessions, SQLite accounts, one site
#             with default_access = "authenticated", captcha off, a throwaway OTP keyring; the
#             bench account first goes through the first-time path with curl (password, forced
#             OTP binding with a TOTP code computed here, password + OTP), and wrk sends that
#             fully logged-in session cookie, so every request is a full session check plus
#             proxying (the session mostly from the gateway's session cache, re-read from Redis
#             about once a second and its idle time written behind, as in production).
#   menshen-anon  the same gateway on a path with access = "anonymous", no cookie: the same
#             proxying without a session check, the floor for the line above.
#   menshen+storm  the authenticated run again while STORM_CLIENTS (default 20) clients post
#             wrong passwords as fast as they are answered (each a new unknown name: a
#             dummy-hash argon2 check, or the "busy" page when the hashing pool is full). The
#             gateway's argon2 threads share its pinned CPU at idle priority; the row shows what
#             a login flood costs signed-in users. STORM_CLIENTS=0 skips it. After a "busy"
#             answer a storm client waits STORM_PAUSE seconds (default 0.1): without it the
#             20 clients spin on instant 503s, on the CPU wrk shares, and measure that instead.
#   memory    resident memory (RSS) of nginx (master + worker) and of the gateway: idle after
#             start, after the runs above, and while IDLE_CONNECTIONS (default "2000 10000")
#             client connections are open and idle, each after one request (menshen: the
#             authenticated path). IDLE_CONNECTIONS=0 skips it. READ_BUFFER sets the gateway's
#             [server] read_buffer (Pingora's own default is 65536) to compare.
# With taskset (and at least 2 CPUs): the proxy under test on CPU 0, wrk and the upstream on
# CPU 1 (Redis is the system's and is not pinned). Everything started here is stopped on exit, and the Redis keys are deleted.
set -euo pipefail

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-50}
WRK_THREADS=${WRK_THREADS:-1}
STORM_CLIENTS=${STORM_CLIENTS:-20}
STORM_PAUSE=${STORM_PAUSE:-0.1}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-2000 10000}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'load.sh: error: %s\n' "$*" >&2; exit 1; }

for tool in nginx wrk curl redis-cli python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install -y nginx-light wrk curl redis-tools python3)"
done
NGINX=$(command -v nginx)

# --- cleanup ------------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/menshen-bench.XXXXXX")
REDIS_PREFIX="menshen-bench-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n'):"
PIDS=()

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  local keys
  keys=$(redis-cli -u "$REDIS_URL" --scan --pattern "${REDIS_PREFIX}*" 2>/dev/null || true)
  if [[ -n "$keys" ]]; then
    printf '%s\n' "$keys" | xargs -r -d '\n' redis-cli -u "$REDIS_URL" unlink >/dev/null 2>&1 || true
    log "deleted $(printf '%s\n' "$keys" | wc -l) Redis key(s) under ${REDIS_PREFIX}"
  fi
  if (( rc != 0 )); then
    for f in "$WORK"/*.log; do
      [[ -s "$f" ]] || continue
      printf -- '--- %s (last 30 lines) ---\n' "${f##*/}" >&2
      tail -n 30 "$f" >&2
    done
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- CPU pinning --------------------------------------------------------------------------------
PIN_PROXY=() PIN_CLIENT=()
PINNING="none"
if [[ -z "${NO_PIN:-}" ]] && command -v taskset >/dev/null && (( $(nproc) >= 2 )); then
  PIN_PROXY=(taskset -c 0)
  PIN_CLIENT=(taskset -c 1)
  PINNING="proxy under test on CPU 0; wrk and upstream on CPU 1 (taskset)"
fi

# --- helpers ------------------------------------------------------------------------------------
USED_PORTS=" "
# Listening ports come from below the kernel's ephemeral range: a port above it may be the local
# end of some connection (from the previous run's wrk, say), which nobody answers on but which
# nginx then cannot bind.
EPHEMERAL_LOW=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
(( EPHEMERAL_LOW > 20000 )) || EPHEMERAL_LOW=60000
free_port() {
  local port
  for _ in $(seq 200); do
    port=$(( 10000 + RANDOM % (EPHEMERAL_LOW - 10000) ))
    [[ "$USED_PORTS" == *" $port "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      USED_PORTS+="$port "
      echo "$port"
      return 0
    fi
  done
  die "no free port found"
}

# wait_http NAME PID URL: waits up to 30 s for URL to answer at all.
wait_http() {
  local name=$1 pid=$2 url=$3
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || die "$name exited during start-up"
    if curl -s -o /dev/null --max-time 1 "$url"; then return 0; fi
    sleep 0.1
  done
  die "$name did not answer at $url within 30 s"
}

nginx_conf() { # nginx_conf NAME HTTP-BLOCK-BODY
  local name=$1 body=$2 dir="$WORK/$1"
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $dir/nginx.pid;
error_log $WORK/$name.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $dir/client_body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  keepalive_requests 1000000;
$body
}
EOF
  echo "$dir/nginx.conf"
}

# run_wrk NAME URL [HEADER]: prints "req/s p50 p99" for one measured run.
run_wrk() {
  local name=$1 url=$2 header=${3:-}
  local args=(-t"$WRK_THREADS" -c"$CONNECTIONS" --latency)
  [[ -n "$header" ]] && args+=(-H "$header")
  if [[ "$WARMUP" != "0" && "$WARMUP" != "0s" ]]; then
    "${PIN_CLIENT[@]}" wrk "${args[@]}" -d"$WARMUP" "$url" >"$WORK/wrk-$name-warmup.out" 2>&1 \
      || die "wrk warm-up against $name failed: $(cat "$WORK/wrk-$name-warmup.out")"
  fi
  log "wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION --latency against $name ($url)"
  "${PIN_CLIENT[@]}" wrk "${args[@]}" -d"$DURATION" "$url" >"$WORK/wrk-$name.out" 2>&1 \
    || die "wrk against $name failed: $(cat "$WORK/wrk-$name.out")"
  sed 's/^/    /' "$WORK/wrk-$name.out" >&2
  local out="$WORK/wrk-$name.out"
  if grep -q 'Non-2xx or 3xx responses' "$out"; then
    die "$name answered non-2xx/3xx responses under load; the numbers would not measure the proxy path"
  fi
  local rps p50 p99
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  p50=$(awk '$1 == "50%" {print $2}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  [[ -n "$rps" && -n "$p50" && -n "$p99" ]] || die "could not parse wrk output for $name"
  echo "$rps $p50 $p99"
}

# totp_at BASE32-SECRET UNIX-SECONDS: the RFC 6238 code (HMAC-SHA1 over the 8-byte big-endian
# count of 30 s steps, dynamic truncation, 6 digits). Spaces in the secret (the page shows it in
# groups of 4) are ignored.
totp_at() {
  python3 - "$1" "$2" <<'PY'
import base64, hashlib, hmac, struct, sys
secret = sys.argv[1].replace(" ", "").upper()
key = base64.b32decode(secret + "=" * (-len(secret) % 8))
mac = hmac.new(key, struct.pack(">Q", int(sys.argv[2]) // 30), hashlib.sha1).digest()
offset = mac[-1] & 0x0F
print("%06d" % ((struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1000000))
PY
}
# totp BASE32-SECRET [OFFSET-SECONDS]: the code for now plus the offset.
totp() { totp_at "$1" $(( $(date +%s) + ${2:-0} )); }
# RFC 6238 appendix B (SHA-1, T = 59 s, secret "12345678901234567890"): checks the helper itself.
[[ $(totp_at GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ 59) == 287082 ]] || die "python3 cannot compute RFC 6238 codes"

# hidden_field NAME FILE: the value of the first <input ... name="NAME" value="..."> in FILE.
hidden_field() {
  sed -n "s/.*name=\"$1\" value=\"\([^\"]*\)\".*/\1/p" "$2" | head -n1
}

# post_form NAME URL FIELD=VALUE...: POSTs a form with the cookie jar (reading and updating
# it), keeps the headers in $WORK/NAME-headers.txt and the body in $WORK/NAME.html, and
# prints "STATUS LOCATION".
post_form() {
  local name=$1 url=$2; shift 2
  local args=() field status location
  for field in "$@"; do args+=(--data-urlencode "$field"); done
  status=$(curl -sS -b "$JAR" -c "$JAR" -D "$WORK/$name-headers.txt" -o "$WORK/$name.html" \
    -w '%{http_code}' -H 'Accept: text/html' "${args[@]}" "$url") || return 1
  location=$(tr -d '\r' <"$WORK/$name-headers.txt" | sed -n 's/^[Ll]ocation: //p' | head -n1)
  echo "$status $location"
}

# get_page NAME URL: GETs a page with the cookie jar into $WORK/NAME.html; prints the status.
get_page() {
  curl -sS -b "$JAR" -c "$JAR" -o "$WORK/$1.html" -w '%{http_code}' -H 'Accept: text/html' "$2"
}

# expect_redirect WHAT "STATUS LOCATION" WANTED-LOCATION: dies unless it is a 303 to there.
expect_redirect() {
  local what=$1 got=$2 want=$3
  [[ "$got" == "303 $want" ]] || die "$what answered '$got', expected '303 $want'"
}

# --- build --------------------------------------------------------------------------------------
if [[ -n "${MENSHEN_BIN:-}" ]]; then
  [[ -x "$MENSHEN_BIN" ]] || die "MENSHEN_BIN=$MENSHEN_BIN is not executable"
  MENSHEN_KIND="MENSHEN_BIN=$MENSHEN_BIN"
else
  log "cargo build --release -p menshen"
  cargo build --release -p menshen
  MENSHEN_BIN="$REPO/target/release/menshen"
  MENSHEN_KIND="release build (target/release/menshen)"
fi

redis-cli -u "$REDIS_URL" ping 2>/dev/null | grep -q PONG || die "Redis at $REDIS_URL does not answer PING"

UP_PORT=$(free_port)
NGX_PORT=$(free_port)
MEN_PORT=$(free_port)

# --- upstream -----------------------------------------------------------------------------------
conf=$(nginx_conf upstream "
  server {
    listen 127.0.0.1:$UP_PORT reuseport backlog=4096;
    location / { default_type text/plain; return 200 \"ok\\n\"; }
  }")
"${PIN_CLIENT[@]}" "$NGINX" -p "$WORK/upstream" -e "$WORK/upstream.log" -c "$conf" &
PIDS+=($!)
wait_http upstream "${PIDS[-1]}" "http://127.0.0.1:$UP_PORT/"
[[ $(curl -s "http://127.0.0.1:$UP_PORT/") == ok ]] || die "upstream does not answer ok"
log "upstream nginx on 127.0.0.1:$UP_PORT"

# --- nginx reverse proxy ------------------------------------------------------------------------
conf=$(nginx_conf nginx-proxy "
  upstream backend {
    server 127.0.0.1:$UP_PORT;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$NGX_PORT backlog=4096;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_set_header Host \$host;
    }
  }")
"${PIN_PROXY[@]}" "$NGINX" -p "$WORK/nginx-proxy" -e "$WORK/nginx-proxy.log" -c "$conf" &
PIDS+=($!)
NGX_PID=${PIDS[-1]}
wait_http "nginx proxy" "${PIDS[-1]}" "http://127.0.0.1:$NGX_PORT/"
[[ $(curl -s "http://127.0.0.1:$NGX_PORT/") == ok ]] || die "nginx proxy does not pass the upstream's answer"
log "nginx reverse proxy on 127.0.0.1:$NGX_PORT"

# --- menshen ------------------------------------------------------------------------------------
MEN_CONF="$WORK/menshen.toml"
# A throwaway keyring for sealing the bench account's TOTP secret; never written anywhere else.
OTP_KEYS=$("$MENSHEN_BIN" keys generate bench) || die "menshen keys generate failed"
[[ "$OTP_KEYS" =~ ^bench:[A-Za-z0-9+/]+=*$ ]] || die "unexpected output of menshen keys generate: $OTP_KEYS"
cat >"$MEN_CONF" <<EOF
# Generated by benches/load.sh
[server]
threads = 1
# The memory phase holds up to 10,000 idle connections from 127.0.0.1.
max_connections = 16384
max_connections_per_address = 16384
${READ_BUFFER:+read_buffer = $READ_BUFFER}

[[listen]]
address = "127.0.0.1:$MEN_PORT"

[session]
insecure_dev_cookie = true

[store]
redis = "$REDIS_URL"
redis_prefix = "$REDIS_PREFIX"
database = "sqlite://$WORK/menshen.db"

[captcha]
mode = "off"

# The login storm comes from one address (a real flood comes from many): no per-address
# throttle, so every storm attempt reaches the password check.
[lockout]
ip_attempts_per_minute = 0

[otp]
keys = "$OTP_KEYS"

[[site]]
name = "bench"
hosts = ["127.0.0.1"]
upstreams = ["127.0.0.1:$UP_PORT"]
default_access = "authenticated"

# The same proxying without any session check, for comparison (menshen-anon).
[[site.rule]]
path = "/anonymous/"
access = "anonymous"
EOF
"$MENSHEN_BIN" check-config "$MEN_CONF" >"$WORK/check-config.log" 2>&1 \
  || die "menshen check-config failed: $(cat "$WORK/check-config.log")"

PASSWORD="Pw-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$PASSWORD" | "$MENSHEN_BIN" account --config "$MEN_CONF" \
  add bench --display-name Bench --school 1 --roles staff --password-stdin >"$WORK/account.log" 2>&1 \
  || die "menshen account add failed: $(cat "$WORK/account.log")"

MENSHEN_LOG=${MENSHEN_LOG:-warn} "${PIN_PROXY[@]}" "$MENSHEN_BIN" run --config "$MEN_CONF" \
  >"$WORK/menshen.log" 2>&1 &
PIDS+=($!)
MEN_PID=${PIDS[-1]}
MEN="http://127.0.0.1:$MEN_PORT"
wait_http menshen "$MEN_PID" "$MEN/.menshen/login"
log "menshen on 127.0.0.1:$MEN_PORT (threads = 1, sessions in Redis under ${REDIS_PREFIX})"

# Log in as a person would the first time, with a cookie jar like a browser's: the login page
# sets the menshen-csrf cookie and carries the csrf token in a hidden field; the right password
# gives a half-logged-in session that must bind a second factor; the binding page shows a fresh
# TOTP secret (and the session's own csrf token); a right code binds it and ends the session;
# then password again, and the OTP code for the next step (the binding spent this one).
JAR="$WORK/cookies.txt"
login_with_password() { # login_with_password NAME: GET + POST of the login form; prints "STATUS LOCATION"
  local status csrf
  status=$(get_page "$1-form" "$MEN/.menshen/login?rd=%2F") || return 1
  [[ "$status" == 200 ]] || { echo "GET login page: $status"; return 0; }
  csrf=$(hidden_field csrf "$WORK/$1-form.html")
  [[ -n "$csrf" ]] || { echo "no csrf field on the login page"; return 0; }
  post_form "$1" "$MEN/.menshen/login" username=bench "password=$PASSWORD" "csrf=$csrf" rd=/
}

# 1. The password: an account without a second factor is sent to the binding page.
result=$(login_with_password login) || die "login request failed"
grep -q 'menshen-csrf' "$JAR" || die "the login page set no menshen-csrf cookie"
expect_redirect "first login" "$result" /.menshen/bind
grep -q $'\tmenshen\t' "$JAR" || die "first login set no menshen session cookie"

# 2. The OTP binding page: secret, bind_id and the session's csrf token.
status=$(get_page bind-otp "$MEN/.menshen/bind/otp") || die "GET /.menshen/bind/otp failed"
[[ "$status" == 200 ]] || die "GET /.menshen/bind/otp answered $status"
OTP_SECRET=$(sed -n 's/.*<code id="otp-secret"[^>]*>\([^<]*\)<\/code>.*/\1/p' "$WORK/bind-otp.html" | head -n1)
BIND_ID=$(hidden_field bind_id "$WORK/bind-otp.html")
BIND_CSRF=$(hidden_field csrf "$WORK/bind-otp.html")
[[ "$OTP_SECRET" =~ ^[A-Z2-7\ ]+$ ]] || die "no base32 #otp-secret on the binding page (got '$OTP_SECRET')"
[[ -n "$BIND_ID" && -n "$BIND_CSRF" ]] || die "no bind_id or csrf field on the binding page"

# 3. Bind with the code for now: the session ends and the user is asked to log in again.
code=$(totp "$OTP_SECRET") || die "could not compute the TOTP code"
result=$(post_form bind "$MEN/.menshen/bind/otp" "csrf=$BIND_CSRF" "bind_id=$BIND_ID" "code=$code") \
  || die "POST /.menshen/bind/otp failed"
expect_redirect "OTP binding" "$result" "/.menshen/login?bound=1"
log "bench account bound its OTP"

# 4. Password again: now the OTP step.
result=$(login_with_password login-again) || die "second login request failed"
expect_redirect "login after binding" "$result" /.menshen/otp
status=$(get_page otp "$MEN/.menshen/otp") || die "GET /.menshen/otp failed"
[[ "$status" == 200 ]] || die "GET /.menshen/otp answered $status"
OTP_CSRF=$(hidden_field csrf "$WORK/otp.html")
[[ -n "$OTP_CSRF" ]] || die "no csrf field on the OTP page"

# 5. The code for the next 30 s step (±1 step is accepted; the binding's step is spent).
code=$(totp "$OTP_SECRET" 30) || die "could not compute the TOTP code"
result=$(post_form otp-login "$MEN/.menshen/otp" "csrf=$OTP_CSRF" "code=$code") || die "POST /.menshen/otp failed"
expect_redirect "OTP login" "$result" /
SESSION=$(tr -d '\r' <"$WORK/otp-login-headers.txt" \
  | sed -n 's/^[Ss]et-[Cc]ookie: menshen=\([^;]*\).*/\1/p' | head -n1)
[[ -n "$SESSION" ]] || die "the OTP login set no menshen session cookie: $(cat "$WORK/otp-login-headers.txt")"
log "logged in as bench with password + OTP"

anon=$(curl -s -o /dev/null -w '%{http_code}' "$MEN/")
[[ "$anon" != 200 ]] || die "menshen let an anonymous request through; the bench would not measure sessions"
body=$(curl -sS -H "Cookie: menshen=$SESSION" -w '%{http_code}' "$MEN/")
[[ "$body" == $'ok\n200' ]] || die "authenticated GET through menshen did not return the upstream's 200 ok (got: $body)"
log "authenticated GET through menshen returns the upstream's 200; anonymous gets $anon"

# rss_mb PID: resident memory of PID and its children (nginx's workers), in MB.
rss_mb() {
  local kb
  kb=$( { ps -o rss= -p "$1"; ps -o rss= --ppid "$1"; } | awk '{ s += $1 } END { print s + 0 }')
  awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }'
}
NGX_RSS_IDLE=$(rss_mb "$NGX_PID")
MEN_RSS_IDLE=$(rss_mb "$MEN_PID")

# --- measure ------------------------------------------------------------------------------------
result=$(run_wrk nginx "http://127.0.0.1:$NGX_PORT/")
read -r NGX_RPS NGX_P50 NGX_P99 <<<"$result"
result=$(run_wrk menshen "$MEN/" "Cookie: menshen=$SESSION")
read -r MEN_RPS MEN_P50 MEN_P99 <<<"$result"
result=$(run_wrk menshen-anon "$MEN/anonymous/")
read -r ANON_RPS ANON_P50 ANON_P99 <<<"$result"

# The login storm: STORM_CLIENTS threads post wrong passwords (a new unknown name each time)
# until the stop file appears, then print how the gateway answered them.
STORM_RPS="" STORM_SUMMARY=""
if (( STORM_CLIENTS > 0 )); then
  STOP="$WORK/storm.stop"
  "${PIN_CLIENT[@]}" python3 - "$MEN_PORT" "$STORM_CLIENTS" "$STOP" "$STORM_PAUSE" >"$WORK/storm.out" 2>"$WORK/storm.log" <<'PY' &
import collections, http.client, os, re, sys, threading, time, urllib.parse
port, clients, stop, pause = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
counts = collections.Counter()
lock = threading.Lock()
def storm(n):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/.menshen/login", headers={"Accept": "text/html"})
    page = conn.getresponse()
    body = page.read().decode()
    cookie = "; ".join(c.split(";")[0] for c in page.headers.get_all("Set-Cookie") or [])
    csrf = re.search(r'name="csrf" value="([^"]*)"', body).group(1)
    i = 0
    while not os.path.exists(stop):
        i += 1
        form = urllib.parse.urlencode({"username": f"storm-{n}-{i}", "password": "wrong",
                                       "csrf": csrf, "rd": "/"})
        try:
            conn.request("POST", "/.menshen/login", body=form, headers={
                "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie,
                "Accept": "text/html"})
            r = conn.getresponse()
            r.read()
            status = r.status
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
        except (OSError, http.client.HTTPException):
            status = "error"
            conn.close()
        with lock:
            counts[status] += 1
        if status == 503:
            time.sleep(pause)
threads = [threading.Thread(target=storm, args=(n,)) for n in range(clients)]
start = time.time()
for t in threads: t.start()
for t in threads: t.join()
secs = time.time() - start
print(" ".join(f"{k}:{v}" for k, v in sorted(counts.items(), key=str)), f"in {secs:.0f}s")
PY
  STORM_PID=$!
  PIDS+=("$STORM_PID")
  sleep 2
  result=$(run_wrk menshen+storm "$MEN/" "Cookie: menshen=$SESSION")
  read -r STORM_RPS STORM_P50 STORM_P99 <<<"$result"
  touch "$STOP"
  wait "$STORM_PID" || die "the login storm failed: $(cat "$WORK/storm.log")"
  STORM_SUMMARY=$(cat "$WORK/storm.out")
fi

MEN_RSS_AFTER=$(rss_mb "$MEN_PID")
NGX_RSS_AFTER=$(rss_mb "$NGX_PID")

# hold_idle NAME PID PORT PATH [COOKIE]: for each count in IDLE_CONNECTIONS, opens that many
# idle keep-alive connections (one request each, all answered 200), prints "COUNT RSS-MB", and
# closes them again.
hold_idle() {
  local name=$1 pid=$2 port=$3 path=$4 cookie=${5:-} n fifo ready rss
  for n in $IDLE_CONNECTIONS; do
    (( n > 0 )) || continue
    fifo="$WORK/idle-$name-$n.in"
    mkfifo "$fifo"
    "${PIN_CLIENT[@]}" python3 "$REPO/benches/idle_clients.py" "$port" "$n" "$path" "$cookie" \
      <"$fifo" >"$WORK/idle-$name-$n.out" 2>"$WORK/idle-$name-$n.log" &
    local holder=$!
    exec 7>"$fifo"
    for _ in $(seq 600); do
      grep -q '^ready' "$WORK/idle-$name-$n.out" 2>/dev/null && break
      kill -0 "$holder" 2>/dev/null || die "idle_clients.py failed: $(cat "$WORK/idle-$name-$n.log")"
      sleep 0.1
    done
    ready=$(head -n1 "$WORK/idle-$name-$n.out")
    [[ "$ready" == "ready $n 200:$n" ]] || die "$name: not all $n idle connections got 200 ($ready)"
    sleep 1
    rss=$(rss_mb "$pid")
    exec 7>&-
    wait "$holder" || true
    echo "$n $rss"
  done
}
MEM_ROWS=()
if [[ "$IDLE_CONNECTIONS" != "0" ]]; then
  log "memory: idle keep-alive connections ($IDLE_CONNECTIONS) to nginx and menshen"
  hold_idle nginx "$NGX_PID" "$NGX_PORT" / >"$WORK/memory-nginx.txt"
  hold_idle menshen "$MEN_PID" "$MEN_PORT" / "menshen=$SESSION" >"$WORK/memory-menshen.txt"
  mapfile -t NGX_IDLE <"$WORK/memory-nginx.txt"
  mapfile -t MEN_IDLE <"$WORK/memory-menshen.txt"
  for i in "${!MEN_IDLE[@]}"; do
    read -r n men_rss <<<"${MEN_IDLE[$i]}"
    read -r _ ngx_rss <<<"${NGX_IDLE[$i]:-0 0}"
    MEM_ROWS+=("$(printf '%-34s %10s %10s' "with $n idle connections" "$ngx_rss" "$men_rss")")
    MEM_ROWS+=("$(printf '%-34s %10s %10s' "  per connection (KB)" \
      "$(awk -v a="$ngx_rss" -v b="$NGX_RSS_AFTER" -v n="$n" 'BEGIN { printf "%.1f", (a - b) * 1024 / n }')" \
      "$(awk -v a="$men_rss" -v b="$MEN_RSS_AFTER" -v n="$n" 'BEGIN { printf "%.1f", (a - b) * 1024 / n }')")")
  done
fi

# The session must still be valid after the run, or menshen was answering something else.
after=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: menshen=$SESSION" "$MEN/")
[[ "$after" == 200 ]] || die "session no longer valid after the run (got $after)"
kill -0 "$MEN_PID" 2>/dev/null || die "menshen died during the run"

ratio() { awk -v m="$1" -v n="$NGX_RPS" 'BEGIN { printf "%.2f", (n > 0 ? m / n : 0) }'; }
RATIO=$(ratio "$MEN_RPS")
ANON_RATIO=$(ratio "$ANON_RPS")

echo
echo "Load bench: GET / -> upstream 'ok' (nginx return 200), loopback, $(nproc) CPUs"
if [[ "$WARMUP" == "0" || "$WARMUP" == "0s" ]]; then warm="no warm-up"; else warm="after a $WARMUP warm-up run"; fi
echo "wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION --latency ($warm); pinning: $PINNING"
echo "nginx: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), worker_processes 1, keepalive upstream pool (64), access_log off"
echo "menshen: $MENSHEN_KIND, [server] threads = 1, Redis sessions, password+otp session cookie on every request"
echo
printf '%-12s %12s %10s %10s\n' proxy req/s p50 p99
printf '%-12s %12s %10s %10s\n' nginx "$NGX_RPS" "$NGX_P50" "$NGX_P99"
printf '%-12s %12s %10s %10s\n' menshen "$MEN_RPS" "$MEN_P50" "$MEN_P99"
printf '%-12s %12s %10s %10s\n' menshen-anon "$ANON_RPS" "$ANON_P50" "$ANON_P99"
if [[ -n "$STORM_RPS" ]]; then
  printf '%-12s %12s %10s %10s\n' menshen+storm "$STORM_RPS" "$STORM_P50" "$STORM_P99"
fi
echo
echo "menshen/nginx req/s ratio: $RATIO"
echo "menshen-anon/nginx req/s ratio: $ANON_RATIO (an anonymous path: the same proxying, no session check)"
if [[ -n "$STORM_RPS" ]]; then
  echo "menshen+storm/menshen req/s ratio: $(awk -v s="$STORM_RPS" -v m="$MEN_RPS" 'BEGIN { printf "%.2f", (m > 0 ? s / m : 0) }') ($STORM_CLIENTS clients posting wrong passwords, ${STORM_PAUSE}s pause after a busy answer; their answers by status: $STORM_SUMMARY; 401 = checked, 503 = busy page)"
fi
echo
echo "Resident memory (MB; menshen [server] read_buffer = ${READ_BUFFER:-default})"
printf '%-34s %10s %10s\n' "" nginx menshen
printf '%-34s %10s %10s\n' "idle after start" "$NGX_RSS_IDLE" "$MEN_RSS_IDLE"
printf '%-34s %10s %10s\n' "after the runs (and login storm)" "$NGX_RSS_AFTER" "$MEN_RSS_AFTER"
for row in "${MEM_ROWS[@]}"; do echo "$row"; done
