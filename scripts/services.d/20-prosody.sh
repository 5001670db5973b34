# prosody: the XMPP server of the control plane (domain intercloud.test), c2s on 127.0.0.1:15222.
# - TLS is required (c2s_require_encryption) with the server certificate from $STATE/pki.
# - Gateways log in with SASL EXTERNAL by client certificate (XEP-0178) through prosody-modules'
#   mod_auth_ccert (certificate_match = "xmppaddr"): the certificate's id-on-xmppAddr SAN names the
#   account, so every certificate the Intercloud Root issues for <id>@intercloud.test *is* an account
#   (no registration step). Pitfalls: the client certificate needs the serverAuth EKU besides
#   clientAuth, and an empty EXTERNAL initial response is refused (send the JID or "=").
# - Revocation: the client certificate is checked against the Root's CRL (LuaSec verifyext
#   "crl_check"). The TLS capath $dir/trust holds links <hash>.0 → root.pem and <hash>.r0 →
#   crl.pem. OpenSSL reads the CRL when a TLS context is made, so our global module
#   mod_intercloud_crl_reload (services.d/prosody/) watches $STATE/pki/crl.pem and reloads the
#   configuration when it changed (mod_tls remakes its contexts, as on SIGHUP; sessions stay):
#   `intercloud ca revoke` + `intercloud ca crl` take effect within seconds. An expired CRL
#   fails every login (closed).
# - scram.intercloud.test is a second host with SCRAM-SHA-1/PLAIN (internal_hashed), one account
#   `fallback`, for clients that cannot present a certificate (interop tests). Its password is in
#   $dir/scram.password (0600, user prosody), never in services.json. It is not a gateway: the
#   directory module below refuses its publishes, and gateways verify every signed message.
# - pubsub.intercloud.test is a PubSub component (XEP-0060) with no admins. Our module
#   mod_intercloud_directory (services.d/prosody/, copied to $dir/modules) creates the catalog
#   node itself (no owner: only the Root's operator, through `prosodyctl shell`, administers it)
#   and lets a gateway publish and retract only the item whose id is its own cloud id. Gateways
#   cannot create, configure, purge or delete nodes.
# - Stream management (XEP-0198, mod_smacks, in Prosody 0.12 core), time (XEP-0202), ping
#   (XEP-0199), disco (XEP-0030), version, uptime; caps and presence are core. No connection or
#   rate limits (mod_limits is not loaded), so benchmarks may open hundreds of sessions.
# - Several Roots (issue 13): a second Prosody, Root 2 (domain root2.test, c2s 127.0.0.1:15223,
#   its own data dir $STATE/prosody2, server certificate pki/prosody2.pem, its own directory
#   pubsub.root2.test with the same module), federated with this one over s2s (Root 1 listens on
#   127.0.0.1:15269, Root 2 on 127.0.0.1:15270). s2s is authenticated by certificate only
#   (s2s_secure_auth: the peer's certificate must chain to the Intercloud Root, pass its CRL and
#   name the peer's domain; SASL EXTERNAL, XEP-0178/RFC 6120 §13.7; mod_dialback is disabled, so no
#   dialback-only trust) and TLS is required. Our global module mod_intercloud_s2s_peers lets each
#   Root federate with the other Root's hosts only: a gateway certificate (which names a DNS
#   domain too) cannot open s2s. Each Root's resolver (lua-unbound) answers the peer's SRV
#   locally (local-zone redirect: the peer domain and its subdomains → localhost:<peer s2s port>).
#   s2s carries what gateways of different Roots say to each other: presence subscriptions and
#   presence, directory reads and catalog notifications from the other Root's pubsub component,
#   offers, accepts, migration requests, progress and entity-time. Every signed message is still
#   verified end to end by the gateways (the Roots only route).
# Nothing else listens: no HTTP, no component port.
#
# services.json: prosody: { host, port, domain, pubsubJid, tls: {ca, servername},
#   sasl: {external: [<jid>…]}, catalogNode,
#   scram: {domain, username, passwordFile, jid}, dir, log, pidFile, s2sPort }   (Root 1)
#   prosody2: { host, port, domain, pubsubJid, catalogNode, tls: {ca, servername}, s2sPort,
#   dir, log, pidFile }                                                          (Root 2)
#   roots: { s2s: {secureAuth, dialback}, list: [{name, domain, host, port, s2sPort, pubsubJid,
#   servername}…] }   — every Root, Root 1 first: what a gateway or a bench needs to reach each

# (nftables: the tests that cut the s2s link between the two Roots, test/integration/migration/two-roots.test.ts)
prosody_packages="prosody prosody-modules lua-unbound nftables"
PROSODY_PORT=15222
PROSODY_S2S_PORT=15269
PROSODY2_PORT=15223
PROSODY2_S2S_PORT=15270
PROSODY_CATALOG_NODE=urn:intercloud:catalog:0

# prosody_config DIR DOMAIN C2S S2S CERTNAME PEER_DOMAIN PEER_S2S — one Root's configuration.
prosody_config() {
  local dir=$1 domain=$2 c2s=$3 s2s=$4 cert=$STATE/pki/$5 peer=$6 peer_s2s=$7 pki=$STATE/pki
  cat <<CFG
-- Written by scripts/services.d/20-prosody.sh; edits are overwritten by the next \`up\`.
-- certificates and modules: $(cat "$cert.pem" "$pki/root.pem" "$dir"/modules/*.lua | sha256sum | cut -c1-16) (a change restarts the server)
plugin_paths = { "$dir/modules" }
intercloud_crl_file = "$pki/crl.pem"
pidfile = "$dir/prosody.pid"
data_path = "$dir/data"
certificates = "$dir"  -- certificates are named explicitly below
admin_socket = "$dir/data/prosody.sock"
log = { info = "$dir/prosody.log"; error = "$dir/prosody.err" }
daemonize = true
interfaces = { "127.0.0.1" }
-- TCP_NODELAY: with Nagle on, a reply written in several TLS records waits for the client's
-- delayed ACK (~40 ms per request/response; the control plane is all small round trips).
network_settings = { nagle = false }
c2s_ports = { $c2s }
c2s_direct_tls_ports = { }
s2s_ports = { $s2s }
s2s_direct_tls_ports = { }
legacy_ssl_ports = { }
component_ports = { }
http_ports = { }
https_ports = { }
modules_enabled = {
  "roster"; "saslauth"; "tls"; "disco"; "ping"; "time"; "version"; "uptime";
  "smacks"; "carbons"; "pep"; "private"; "posix"; "admin_shell"; "intercloud_crl_reload";
  "intercloud_s2s_peers";
}
-- s2s by certificate only (XEP-0178 SASL EXTERNAL): no dialback.
modules_disabled = { "dialback" }
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = true
intercloud_s2s_peers = { "$peer"; "pubsub.$peer" }
allow_registration = false
-- The peer Root's SRV is answered locally (the peer and its subdomains, e.g. its pubsub
-- component, → localhost:$peer_s2s); nothing else is resolved (forwarded to nothing).
unbound = { resolvconf = false; hoststxt = true; forward = "127.0.0.1";
  options = { ["local-zone:"] = "$peer. redirect"; ["local-data:"] = "$peer. IN SRV 0 0 $peer_s2s localhost." } }
ssl = { certificate = "$cert.pem"; key = "$cert.key"; capath = "$dir/trust" }
-- the peer Root's certificate is checked against the Intercloud Root and its CRL as well
s2s_ssl = { certificate = "$cert.pem"; key = "$cert.key"; capath = "$dir/trust"; verifyext = { "crl_check" } }

VirtualHost "$domain"
  authentication = "ccert"
  certificate_match = "xmppaddr"
  -- ask for a client certificate, verified against the Intercloud Root and its CRL (XEP-0178);
  -- verifyext adds to Prosody's defaults (lsec_continue: mod_auth_ccert refuses a bad chain)
  c2s_ssl = { certificate = "$cert.pem"; key = "$cert.key"; capath = "$dir/trust";
              verify = { "peer"; "client_once" }; verifyext = { "crl_check" } }
CFG
  if [ "$domain" = "$XMPP_DOMAIN" ]; then cat <<CFG

VirtualHost "scram.$domain"
  authentication = "internal_hashed"
CFG
  fi
  cat <<CFG

Component "pubsub.$domain" "pubsub"
  -- no admins: a gateway is not trusted with other clouds' entries (see mod_intercloud_directory)
  modules_enabled = { "intercloud_directory" }
  intercloud_catalog_node = "$PROSODY_CATALOG_NODE"
  intercloud_gateway_domain = "$domain"
  pubsub_max_items = 100000
CFG
}

# prosody_root_up DIR DOMAIN C2S S2S CERTNAME PEER_DOMAIN PEER_S2S — starts (or restarts, when its
# configuration changed) one Root's Prosody.
prosody_root_up() {
  local dir=$1 domain=$2 c2s=$3 restart=0 m
  mkdir -p "$dir/data" "$dir/modules" "$dir/trust"
  for m in "$INTERCLOUD_REPO"/scripts/services.d/prosody/mod_*.lua; do
    update_file "$dir/modules/$(basename "$m")" < "$m" || true
  done
  rm -f "$dir/trust.pem"
  # TLS capath: the root and its CRL by OpenSSL subject hash (links: a re-issued CRL is read as is)
  local pki=$STATE/pki rh ch
  rh=$(openssl x509 -in "$pki/root.pem" -noout -hash); ch=$(openssl crl -in "$pki/crl.pem" -noout -hash)
  find "$dir/trust" -mindepth 1 ! -name "$rh.0" ! -name "$ch.r0" -delete
  [ "$(readlink "$dir/trust/$rh.0")" = "$pki/root.pem" ] || ln -sfn "$pki/root.pem" "$dir/trust/$rh.0"
  [ "$(readlink "$dir/trust/$ch.r0")" = "$pki/crl.pem" ] || ln -sfn "$pki/crl.pem" "$dir/trust/$ch.r0"
  prosody_config "$@" | update_file "$dir/prosody.cfg.lua" && restart=1
  chown -R -h prosody:prosody "$dir"  # -h: the links in trust/ keep pointing at root-owned files
  if alive "$dir/prosody.pid" prosody; then
    [ "$restart" = 1 ] || return 0
    PROSODY_STARTED=1
    log "prosody ($domain) configuration changed: restarting"; stop_pidfile "$dir/prosody.pid" prosody "prosody ($domain)"
  fi
  PROSODY_STARTED=1
  rm -f "$dir/prosody.pid"
  ensure_port_free "$c2s" "prosody ($domain)"
  prosodyctl --config "$dir/prosody.cfg.lua" start >/dev/null
  waitport "$c2s"
}

prosody_up() {
  local dir=$STATE/prosody dir2=$STATE/prosody2 s; s=$(now)
  # set by prosody_root_up when it (re)starts a Root: only then is a start time reported
  PROSODY_STARTED=0
  prosody_root_up "$dir" "$XMPP_DOMAIN" "$PROSODY_PORT" "$PROSODY_S2S_PORT" prosody "$XMPP_DOMAIN2" "$PROSODY2_S2S_PORT"
  prosody_root_up "$dir2" "$XMPP_DOMAIN2" "$PROSODY2_PORT" "$PROSODY2_S2S_PORT" prosody2 "$XMPP_DOMAIN" "$PROSODY_S2S_PORT"
  local pw; pw=$(secret "$dir/scram.password")
  if [ ! -e "$dir/data/scram%2eintercloud%2etest/accounts/fallback.dat" ]; then
    prosodyctl --config "$dir/prosody.cfg.lua" register fallback "scram.$XMPP_DOMAIN" "$pw" >/dev/null
  fi
  chown prosody:prosody "$dir/scram.password"; chmod 600 "$dir/scram.password"
  prosody_env "$dir" "$dir2"
  [ "$PROSODY_STARTED" = 0 ] || took prosody "$s"
}

# prosody_env DIR DIR2 — services.json's prosody, prosody2 and roots entries (no secret in them:
# the password is a file).
prosody_env() {
  local dir=$1 dir2=$2 jids="" sep="" c
  for c in $PKI_CLOUDS; do jids+="$sep\"$c@$XMPP_DOMAIN\""; sep=", "; done
  write_env prosody "{\"host\": \"127.0.0.1\", \"port\": $PROSODY_PORT, \"domain\": \"$XMPP_DOMAIN\",
  \"pubsubJid\": \"pubsub.$XMPP_DOMAIN\", \"catalogNode\": \"$PROSODY_CATALOG_NODE\",
  \"tls\": {\"ca\": \"$STATE/pki/root.pem\", \"servername\": \"$XMPP_DOMAIN\"},
  \"sasl\": {\"external\": [$jids]},
  \"scram\": {\"domain\": \"scram.$XMPP_DOMAIN\", \"username\": \"fallback\", \"passwordFile\": \"$dir/scram.password\", \"jid\": \"fallback@scram.$XMPP_DOMAIN\"},
  \"dir\": \"$dir\", \"log\": \"$dir/prosody.log\", \"pidFile\": \"$dir/prosody.pid\", \"s2sPort\": $PROSODY_S2S_PORT}"
  write_env prosody2 "{\"host\": \"127.0.0.1\", \"port\": $PROSODY2_PORT, \"domain\": \"$XMPP_DOMAIN2\",
  \"pubsubJid\": \"pubsub.$XMPP_DOMAIN2\", \"catalogNode\": \"$PROSODY_CATALOG_NODE\",
  \"tls\": {\"ca\": \"$STATE/pki/root.pem\", \"servername\": \"$XMPP_DOMAIN2\"}, \"s2sPort\": $PROSODY2_S2S_PORT,
  \"dir\": \"$dir2\", \"log\": \"$dir2/prosody.log\", \"pidFile\": \"$dir2/prosody.pid\"}"
  write_env roots "{\"s2s\": {\"secureAuth\": true, \"dialback\": false},
  \"list\": [
    {\"name\": \"prosody\", \"domain\": \"$XMPP_DOMAIN\", \"host\": \"127.0.0.1\", \"port\": $PROSODY_PORT, \"s2sPort\": $PROSODY_S2S_PORT, \"pubsubJid\": \"pubsub.$XMPP_DOMAIN\", \"servername\": \"$XMPP_DOMAIN\"},
    {\"name\": \"prosody2\", \"domain\": \"$XMPP_DOMAIN2\", \"host\": \"127.0.0.1\", \"port\": $PROSODY2_PORT, \"s2sPort\": $PROSODY2_S2S_PORT, \"pubsubJid\": \"pubsub.$XMPP_DOMAIN2\", \"servername\": \"$XMPP_DOMAIN2\"}]}"
}

prosody_down() {
  stop_pidfile "$STATE/prosody2/prosody.pid" prosody "prosody ($XMPP_DOMAIN2)"
  stop_pidfile "$STATE/prosody/prosody.pid" prosody
}

prosody_status() {
  local rc=0
  if alive "$STATE/prosody/prosody.pid" prosody; then say_status prosody up "c2s 127.0.0.1:$PROSODY_PORT s2s :$PROSODY_S2S_PORT ($XMPP_DOMAIN)"
  else say_status prosody down "no live pid in $STATE/prosody/prosody.pid"; rc=1; fi
  if alive "$STATE/prosody2/prosody.pid" prosody; then say_status prosody2 up "c2s 127.0.0.1:$PROSODY2_PORT s2s :$PROSODY2_S2S_PORT ($XMPP_DOMAIN2)"
  else say_status prosody2 down "no live pid in $STATE/prosody2/prosody.pid"; rc=1; fi
  return $rc
}
