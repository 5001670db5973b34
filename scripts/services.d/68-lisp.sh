# lisp: the Intercloud Root's LISP Map-Server/Map-Resolver — the project's own
# `intercloud root map-server` (no LISP map server is packaged in Debian) — on UDP
# 127.0.0.1:14342, with one site per cloud (RFC 9301 key id, HMAC-SHA-256-128 key in
# $STATE/lisp/<cloud>.key), each granted its own block of the Intercloud's EID space
# (10.0.0.0/8, 2001:db8::/32; see lisp_grants). A VM's EID moves to another cloud only by a
# hand-over its holder signs under the Intercloud Root, so the map server is given the
# Root and its CRL ($STATE/pki, from 10-pki.sh); who holds which EID survives a restart in
# $STATE/lisp/state.json. tshark is installed for the integration
# tests that decode what the codec writes.
#
# services.json: lisp: { host, port, pidFile, log, config, eidSpace: [..],
#   sites: {<cloud>: {keyId, algorithm, rfc6833KeyId, keyFile, rlocs: [..], grants: [..]}} }

lisp_packages="tshark"
LISP_PORT=14342
LISP_CLOUDS="cloud-a:1:192.0.2.1 cloud-b:2:198.51.100.1 cloud-c:3:203.0.113.1"

# lisp_grants CLOUD — the EID prefixes CLOUD may register without a hand-over (space-separated).
lisp_grants() {
  case $1 in
    cloud-a) echo "10.0.0.0/9 2001:db8:a::/48" ;;
    cloud-b) echo "10.128.0.0/10 2001:db8:b::/48" ;;
    cloud-c) echo "10.192.0.0/10 2001:db8:c::/48" ;;
    *) echo "services: no lisp grants for '$1'" >&2; return 1 ;;
  esac
}

# lisp_json_list WORD... — a JSON list of strings.
lisp_json_list() {
  local out="" sep="" w
  for w in "$@"; do out+="$sep\"$w\""; sep=", "; done
  echo "[$out]"
}

# lisp_waitudp PORT — waits up to 30 s for a UDP socket bound to PORT.
lisp_waitudp() {
  for _ in $(seq 300); do [ -n "$(ss -lunH "sport = :$1")" ] && return 0; sleep 0.1; done
  echo "services: nothing listens on udp port $1 after 30 s" >&2; return 1
}

lisp_up() {
  local dir=$STATE/lisp s entry c id rloc sites="" sep="" restart=0; s=$(now)
  mkdir -p "$dir"; chmod 700 "$dir"
  {
    echo "# Written by scripts/services.d/68-lisp.sh."
    echo "listen: 127.0.0.1:$LISP_PORT"
    echo "trust: { root: \"$STATE/pki/root.pem\", crl: \"$STATE/pki/crl.pem\" }"
    echo "stateFile: $dir/state.json"
    echo "sites:"
    for entry in $LISP_CLOUDS; do
      IFS=: read -r c id rloc <<<"$entry"
      secret "$dir/$c.key" >/dev/null
      # shellcheck disable=SC2046 # the grants are words by design
      printf '  - { name: %s, keyId: %s, keyFile: %s, allowedPrefixes: %s }\n' "$c" "$id" "$dir/$c.key" "$(lisp_json_list $(lisp_grants "$c"))"
    done
  } | update_file "$dir/map-server.yaml" 600 && restart=1
  if alive "$dir/map-server.pid" map-server && [ "$restart" = 1 ]; then
    log "lisp map server configuration changed: restarting"; lisp_down
  fi
  if ! alive "$dir/map-server.pid" map-server; then
    nohup "$INTERCLOUD_REPO/scripts/intercloud" root map-server --config "$dir/map-server.yaml" >>"$dir/map-server.log" 2>&1 &
    echo $! > "$dir/map-server.pid"
    lisp_waitudp "$LISP_PORT"
    took lisp "$s"
  fi
  for entry in $LISP_CLOUDS; do
    IFS=: read -r c id rloc <<<"$entry"
    # rfc6833KeyId: the same key id + algorithm (2) as RFC 6833's 16-bit field, as tshark shows it.
    # shellcheck disable=SC2046 # the grants are words by design
    sites+="$sep\"$c\": {\"keyId\": $id, \"algorithm\": \"hmac-sha-256-128\", \"rfc6833KeyId\": $((id * 256 + 2)), \"keyFile\": \"$dir/$c.key\", \"rlocs\": [\"$rloc\"], \"grants\": $(lisp_json_list $(lisp_grants "$c"))}"
    sep=", "
  done
  write_env lisp "{\"host\": \"127.0.0.1\", \"port\": $LISP_PORT, \"pidFile\": \"$dir/map-server.pid\",
  \"log\": \"$dir/map-server.log\", \"config\": \"$dir/map-server.yaml\", \"eidSpace\": [\"10.0.0.0/8\", \"2001:db8::/32\"],
  \"sites\": {$sites}}"
}

lisp_down() { stop_pidfile "$STATE/lisp/map-server.pid" map-server "lisp map server"; }

lisp_status() {
  if alive "$STATE/lisp/map-server.pid" map-server; then say_status lisp up "udp 127.0.0.1:$LISP_PORT"
  else say_status lisp down "no live pid in $STATE/lisp/map-server.pid"; fi
}
