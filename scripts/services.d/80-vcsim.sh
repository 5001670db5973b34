# vcsim: VMware's vCenter simulator for the VMware hypervisor adapter's tests.
# Debian's golang-github-vmware-govmomi-dev ships govmomi's `simulator` library, not the `vcsim`
# program, so scripts/vcsim/main.go (ours) is built once, offline, in GOPATH mode, into
# $STATE/vcsim/bin. It serves on 127.0.0.1:24443 over TLS with a self-signed certificate made here;
# clients pin that certificate (services.json `vcsim.caFile`), they never turn verification off.
# Its datastore LocalDS_0 is a directory under $STATE/vcsim/tmp (TMPDIR).
#
# services.json:
#   vcsim: { url, host, port, user, passwordFile, caFile, certSha256, datacenter, datastore, pidFile }
#   (the password only in passwordFile, 0600, never in services.json)

vcsim_packages="golang-go golang-github-vmware-govmomi-dev openssl"
VCSIM_PORT=24443

vcsim_build() {
  local dir=$STATE/vcsim src=$INTERCLOUD_REPO/scripts/vcsim/main.go sum
  # Rebuilt only when the source's bytes changed (not its mtime: every fresh checkout or worktree
  # has a newer main.go, and a rebuild restarts the vcsim that other checkouts' tests use).
  sum=$(sha256sum "$src" | cut -d' ' -f1)
  # (A build from before this stamp existed counts when it is newer than the source, as it did.)
  if [ -x "$dir/bin/vcsim" ]; then
    if [ -f "$dir/bin/vcsim.src-sha256" ]; then
      [ "$(cat "$dir/bin/vcsim.src-sha256")" != "$sum" ] || return 0
    elif [ "$dir/bin/vcsim" -nt "$src" ]; then
      echo "$sum" > "$dir/bin/vcsim.src-sha256"; return 0
    fi
  fi
  local s; s=$(now); log "building vcsim (offline, GOPATH mode)"
  mkdir -p "$dir/gopath" "$dir/gocache" "$dir/bin"
  ( cd "$INTERCLOUD_REPO/scripts/vcsim" && \
    GO111MODULE=off GOFLAGS= GOPATH="$dir/gopath:/usr/share/gocode" GOCACHE="$dir/gocache" \
    go build -o "$dir/bin/vcsim.tmp" . ) >"$dir/build.log" 2>&1 \
    || { echo "services: vcsim build failed, see $dir/build.log" >&2; tail -20 "$dir/build.log" >&2; return 1; }
  mv "$dir/bin/vcsim.tmp" "$dir/bin/vcsim"
  echo "$sum" > "$dir/bin/vcsim.src-sha256"
  VCSIM_REBUILT=1
  took "vcsim-build" "$s"
}

vcsim_up() {
  local dir=$STATE/vcsim s; s=$(now)
  mkdir -p "$dir/tmp"
  vcsim_build
  if [ ! -s "$dir/cert.pem" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
      -keyout "$dir/key.pem" -out "$dir/cert.pem" -subj "/CN=vcsim.intercloud.test" \
      -addext "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:vcsim.intercloud.test" 2>/dev/null
    chmod 600 "$dir/key.pem"
  fi
  [ -s "$dir/password" ] || { head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$dir/password"; chmod 600 "$dir/password"; }
  # A new build replaces the one running.
  [ "${VCSIM_REBUILT:-0}" = 0 ] || stop_pidfile "$dir/vcsim.pid" "$dir/bin/vcsim" vcsim
  if ! alive "$dir/vcsim.pid" "$dir/bin/vcsim"; then
    # A restart is a fresh inventory: remove the previous run's datastore directories.
    rm -rf "$dir/tmp"; mkdir -p "$dir/tmp"
    TMPDIR="$dir/tmp" setsid "$dir/bin/vcsim" -listen "127.0.0.1:$VCSIM_PORT" -cert "$dir/cert.pem" -key "$dir/key.pem" \
      -user intercloud -password-file "$dir/password" >"$dir/vcsim.log" 2>&1 < /dev/null &
    echo $! > "$dir/vcsim.pid"
    waitport "$VCSIM_PORT"
    took "vcsim" "$s"
  fi
  local fp; fp=$(openssl x509 -in "$dir/cert.pem" -noout -fingerprint -sha256 | cut -d= -f2)
  write_env vcsim "$(printf '{"url":"https://127.0.0.1:%s/sdk","host":"127.0.0.1","port":%s,"user":"intercloud","passwordFile":"%s","caFile":"%s","certSha256":"%s","datacenter":"DC0","datastore":"LocalDS_0","pidFile":"%s"}' \
    "$VCSIM_PORT" "$VCSIM_PORT" "$dir/password" "$dir/cert.pem" "$fp" "$dir/vcsim.pid")"
}

vcsim_down() { stop_pidfile "$STATE/vcsim/vcsim.pid" "$STATE/vcsim/bin/vcsim" vcsim; }

vcsim_status() {
  if alive "$STATE/vcsim/vcsim.pid" "$STATE/vcsim/bin/vcsim"; then say_status vcsim up "https://127.0.0.1:$VCSIM_PORT/sdk (pinned self-signed cert)"
  else say_status vcsim down "no live pid in $STATE/vcsim/vcsim.pid"; fi
}
