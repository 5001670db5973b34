# bind: BIND 9 (Debian bind9) on 127.0.0.1:15353 (UDP+TCP), authoritative for the zone
# vms.intercloud.test, which accepts RFC 2136 updates signed with the TSIG key
# `intercloud-update` (hmac-sha256, made by tsig-keygen) — the DNS re-address path for
# clouds that do not run LISP. No recursion, no rndc; state in $STATE/bind (owned by bind).
#
# services.json: bind: { host, port, zone, keyName, keyAlgorithm, keyFile, pidFile, log } — the TSIG
#   secret is only in keyFile (root:bind 0640; what `nsupdate -k` reads), never in services.json.

bind_packages="bind9 bind9-dnsutils"
BIND_PORT=15353
BIND_ZONE=vms.intercloud.test
BIND_KEY=intercloud-update

bind_up() {
  local dir=$STATE/bind s restart=0; s=$(now)
  mkdir -p "$dir"
  [ -s "$dir/update.key" ] || { ( umask 077; tsig-keygen -a hmac-sha256 "$BIND_KEY" > "$dir/update.key.tmp" ); mv "$dir/update.key.tmp" "$dir/update.key"; }
  chown root:bind "$dir/update.key"; chmod 640 "$dir/update.key"
  if [ ! -s "$dir/$BIND_ZONE.zone" ]; then
    cat > "$dir/$BIND_ZONE.zone" <<ZONE
\$TTL 300
@   IN SOA ns.$BIND_ZONE. hostmaster.$BIND_ZONE. ( 1 3600 600 86400 300 )
    IN NS  ns.$BIND_ZONE.
ns  IN A   127.0.0.1
ZONE
  fi
  update_file "$dir/named.conf" <<CONF && restart=1
// Written by scripts/services.d/70-bind.sh.
include "$dir/update.key";
options {
  directory "$dir";
  pid-file "$dir/named.pid";
  session-keyfile "$dir/session.key";
  listen-on port $BIND_PORT { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion no;
  allow-query { any; };
  dnssec-validation no;
};
controls { };
logging {
  channel main { file "$dir/named.log" versions 2 size 5m; print-time yes; severity info; };
  category default { main; };
  category update { main; };
  category security { main; };
};
zone "$BIND_ZONE" {
  type primary;
  file "$dir/$BIND_ZONE.zone";
  allow-update { key "$BIND_KEY"; };
};
CONF
  chown -R bind:bind "$dir" 2>/dev/null || true
  if alive "$dir/named.pid" named && [ "$restart" = 1 ]; then
    log "bind configuration changed: restarting"; bind_down
  fi
  if ! alive "$dir/named.pid" named; then
    rm -f "$dir/named.pid"
    named-checkconf "$dir/named.conf"
    /usr/sbin/named -u bind -c "$dir/named.conf"
    waitport "$BIND_PORT"
    took bind "$s"
  fi
  write_env bind "{\"host\": \"127.0.0.1\", \"port\": $BIND_PORT, \"zone\": \"$BIND_ZONE\", \"keyName\": \"$BIND_KEY\",
  \"keyAlgorithm\": \"hmac-sha256\", \"keyFile\": \"$dir/update.key\",
  \"pidFile\": \"$dir/named.pid\", \"log\": \"$dir/named.log\"}"
}

bind_down() { stop_pidfile "$STATE/bind/named.pid" named bind; }

bind_status() {
  if alive "$STATE/bind/named.pid" named; then say_status bind up "127.0.0.1:$BIND_PORT zone $BIND_ZONE"
  else say_status bind down "no live pid in $STATE/bind/named.pid"; fi
}
