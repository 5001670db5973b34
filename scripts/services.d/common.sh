# Helpers shared by the services.d files (sourced by scripts/services).

now() { date +%s.%N; }
# took NAME START — prints how long NAME took to come up.
took() { awk -v a="$2" -v b="$(now)" -v n="$1" 'BEGIN{printf "services: %-12s up in %5.1fs\n", n, b-a}'; }
log() { echo "services: $*"; }

# alive PIDFILE WORD — true when PIDFILE names a live process whose command line contains WORD.
alive() { [ -s "$1" ] && grep -qa -- "$2" "/proc/$(cat "$1")/cmdline" 2>/dev/null; }

# running PID — true while PID exists and has not exited: a zombie counts as gone (daemons are
# reparented to PID 1, which may take seconds to reap them).
running() { local st; st=$(awk '/^State:/{print $2}' "/proc/$1/status" 2>/dev/null); [ -n "$st" ] && [ "$st" != Z ]; }

# stop_pidfile PIDFILE WORD [NAME] — SIGTERM the process of PIDFILE (only if it is still WORD), wait, remove.
stop_pidfile() {
  local pf=$1 word=$2 name=${3:-$2}
  if alive "$pf" "$word"; then
    local pid; pid=$(cat "$pf"); kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do running "$pid" || break; sleep 0.1; done
    running "$pid" && kill -9 "$pid" 2>/dev/null || true
    log "$name stopped"
  fi
  rm -f "$pf"
}

# close_inherited_fds — closes every descriptor above 2 this shell inherited or opened, except
# bash's own (255, the script it reads), so the daemons it starts hold none of them.
close_inherited_fds() {
  local fd
  for fd in /proc/$$/fd/*; do
    fd=${fd##*/}
    case $fd in 0|1|2|255) ;; *) eval "exec $fd>&-" 2>/dev/null || true ;; esac
  done
}

# service_dir NAME — the folder under $STATE that holds service NAME's state and logs.
service_dir() {
  case $1 in sshd) echo "$STATE/ssh" ;; timesync) echo "$STATE/time" ;; *) echo "$STATE/$1" ;; esac
}

# waitport PORT [NETNS] — waits up to 60 s for a TCP listener on PORT.
# ensure_port_free PORT NAME — fails, naming the holder, when something already listens on
# 127.0.0.1:PORT before NAME starts: a server left from an earlier start (its pid file lost or
# overwritten) would otherwise answer in NAME's place, with old certificates, and `waitport`
# would take it for the new one.
ensure_port_free() {
  local p=$1 name=$2 line pid
  line=$(ss -ltnpH "sport = :$p" 2>/dev/null | head -1)
  [ -z "$line" ] && return 0
  pid=$(printf '%s\n' "$line" | sed -n 's/.*pid=\([0-9]*\).*/\1/p')
  echo "services: cannot start $name: port $p is already held by pid ${pid:-?} ($(tr '\0' ' ' < "/proc/${pid:-0}/cmdline" 2>/dev/null || echo unknown)); stop that process first" >&2
  return 1
}

waitport() {
  local p=$1 ns=${2:-}
  for _ in $(seq 600); do
    if [ -n "$ns" ]; then [ -n "$(ip netns exec "$ns" ss -ltnH "sport = :$p")" ] && return 0
    else [ -n "$(ss -ltnH "sport = :$p")" ] && return 0; fi
    sleep 0.1
  done
  echo "services: nothing listens on port $p after 60 s" >&2; return 1
}

# ensure_packages PKG… — installs the Debian packages that are missing (one apt run).
ensure_packages() {
  local missing=() p installed
  # One dpkg-query for all (one per package costs ~20 ms each on every `up`). It exits 1 when any
  # package was never installed — the very case this is for — so its status is not the answer:
  # its output is. Captured first, outside the pipeline, so `set -o pipefail` cannot end the script.
  local status
  status=$(dpkg-query -W -f='${Package}:${Status}\n' "$@" 2>/dev/null) || true
  installed=" $(printf '%s\n' "$status" | awk -F: '$2 == "install ok installed" {print $1}' | tr '\n' ' ') "
  for p in "$@"; do
    case $installed in *" $p "*) ;; *) missing+=("$p") ;; esac
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  local apt="apt-get -o DPkg::Lock::Timeout=900 -q"
  DEBIAN_FRONTEND=noninteractive $apt update -qq
  DEBIAN_FRONTEND=noninteractive $apt install -y --no-install-recommends "${missing[@]}" >"$STATE/apt.log" 2>&1 \
    || { echo "services: apt-get install failed, see $STATE/apt.log" >&2; tail -20 "$STATE/apt.log" >&2; return 1; }
}

# write_env NAME JSON — records how to reach service NAME (merged into services.json).
write_env() { mkdir -p "$STATE/env"; printf '%s\n' "$2" > "$STATE/env/$1.json.tmp"; mv "$STATE/env/$1.json.tmp" "$STATE/env/$1.json"; }

# merge_env — $STATE/services.json = { stateDir, NAME: <env/NAME.json>, … }.
merge_env() {
  node -e '
    const fs = require("fs"), path = require("path"), dir = process.argv[1];
    const out = { stateDir: dir };
    for (const f of fs.readdirSync(path.join(dir, "env")).filter((f) => f.endsWith(".json")).sort())
      out[f.slice(0, -5)] = JSON.parse(fs.readFileSync(path.join(dir, "env", f), "utf8"));
    fs.writeFileSync(path.join(dir, "services.json.tmp"), JSON.stringify(out, null, 2) + "\n");
    fs.renameSync(path.join(dir, "services.json.tmp"), path.join(dir, "services.json"));
  ' "$STATE"
}

# intercloud ARGS… — the project's CLI, run from the source tree.
intercloud() { "$INTERCLOUD_REPO/scripts/intercloud" "$@"; }

# update_file FILE [MODE] — writes stdin to FILE only when it differs; true when FILE changed
# (callers restart a running server whose configuration changed, so `up` applies edits).
update_file() {
  local f=$1 mode=${2:-644} tmp="$1.new.$$"
  cat > "$tmp"; chmod "$mode" "$tmp"
  if [ -f "$f" ] && cmp -s "$tmp" "$f"; then rm -f "$tmp"; return 1; fi
  mv "$tmp" "$f"; return 0
}

# secret FILE — prints the random secret stored in FILE, making it (mode 600) on first use.
secret() {
  [ -s "$1" ] || { head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' > "$1.tmp"; chmod 600 "$1.tmp"; mv "$1.tmp" "$1"; }
  cat "$1"
}

# say_status NAME up|down DETAIL — the one status line of a service; returns 1 when down.
say_status() { printf 'services: %-10s %-4s %s\n' "$1" "$2" "$3"; [ "$2" = up ]; }
