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
# Nothing else listens: no s2s, no HTTP, no component port.
#
# services.json: prosody: { host, port, domain, pubsubJid, tls: {ca, servername},
#   sasl: {external: [<jid>…]}, catalogNode,
#   scram: {domain, username, passwordFile, jid}, dir, log, pidFile }

prosody_packages="prosody prosody-modules lua-unbound"
PROSODY_PORT=15222
PROSODY_CATALOG_NODE=urn:intercloud:catalog:0

prosody_config() {
  local dir=$1 pki=$STATE/pki
  cat <<CFG
-- Written by scripts/services.d/20-prosody.sh; edits are overwritten by the next \`up\`.
-- certificates and modules: $(cat "$pki/prosody.pem" "$pki/root.pem" "$dir"/modules/*.lua | sha256sum | cut -c1-16) (a change restarts the server)
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
c2s_ports = { $PROSODY_PORT }
c2s_direct_tls_ports = { }
s2s_ports = { }
s2s_direct_tls_ports = { }
legacy_ssl_ports = { }
component_ports = { }
http_ports = { }
https_ports = { }
modules_enabled = {
  "roster"; "saslauth"; "tls"; "disco"; "ping"; "time"; "version"; "uptime";
  "smacks"; "carbons"; "pep"; "private"; "posix"; "admin_shell"; "intercloud_crl_reload";
}
modules_disabled = { "s2s"; "dialback" }
c2s_require_encryption = true
allow_registration = false
-- no DNS lookups are needed: nothing federates
unbound = { resolvconf = false; hoststxt = true; forward = "127.0.0.1" }
ssl = { certificate = "$pki/prosody.pem"; key = "$pki/prosody.key"; capath = "$dir/trust" }

VirtualHost "$XMPP_DOMAIN"
  authentication = "ccert"
  certificate_match = "xmppaddr"
  -- ask for a client certificate, verified against the Intercloud Root and its CRL (XEP-0178);
  -- verifyext adds to Prosody's defaults (lsec_continue: mod_auth_ccert refuses a bad chain)
  c2s_ssl = { certificate = "$pki/prosody.pem"; key = "$pki/prosody.key"; capath = "$dir/trust";
              verify = { "peer"; "client_once" }; verifyext = { "crl_check" } }

VirtualHost "scram.$XMPP_DOMAIN"
  authentication = "internal_hashed"

Component "pubsub.$XMPP_DOMAIN" "pubsub"
  -- no admins: a gateway is not trusted with other clouds' entries (see mod_intercloud_directory)
  modules_enabled = { "intercloud_directory" }
  intercloud_catalog_node = "$PROSODY_CATALOG_NODE"
  intercloud_gateway_domain = "$XMPP_DOMAIN"
  pubsub_max_items = 1000
CFG
}

prosody_up() {
  local dir=$STATE/prosody s; s=$(now)
  mkdir -p "$dir/data" "$dir/modules" "$dir/trust"
  local restart=0 m
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
  prosody_config "$dir" | update_file "$dir/prosody.cfg.lua" && restart=1
  chown -R -h prosody:prosody "$dir"  # -h: the links in trust/ keep pointing at root-owned files
  if alive "$dir/prosody.pid" prosody; then
    [ "$restart" = 1 ] || { prosody_env "$dir"; return 0; }
    log "prosody configuration changed: restarting"; prosody_down
  fi
  rm -f "$dir/prosody.pid"
  prosodyctl --config "$dir/prosody.cfg.lua" start >/dev/null
  waitport "$PROSODY_PORT"
  local pw; pw=$(secret "$dir/scram.password")
  if [ ! -e "$dir/data/scram%2eintercloud%2etest/accounts/fallback.dat" ]; then
    prosodyctl --config "$dir/prosody.cfg.lua" register fallback "scram.$XMPP_DOMAIN" "$pw" >/dev/null
  fi
  chown prosody:prosody "$dir/scram.password"; chmod 600 "$dir/scram.password"
  prosody_env "$dir"
  took prosody "$s"
}

# prosody_env DIR — services.json's prosody entry (no secret in it: the password is a file).
prosody_env() {
  local dir=$1 jids="" sep="" c
  for c in $PKI_CLOUDS; do jids+="$sep\"$c@$XMPP_DOMAIN\""; sep=", "; done
  write_env prosody "{\"host\": \"127.0.0.1\", \"port\": $PROSODY_PORT, \"domain\": \"$XMPP_DOMAIN\",
  \"pubsubJid\": \"pubsub.$XMPP_DOMAIN\", \"catalogNode\": \"$PROSODY_CATALOG_NODE\",
  \"tls\": {\"ca\": \"$STATE/pki/root.pem\", \"servername\": \"$XMPP_DOMAIN\"},
  \"sasl\": {\"external\": [$jids]},
  \"scram\": {\"domain\": \"scram.$XMPP_DOMAIN\", \"username\": \"fallback\", \"passwordFile\": \"$dir/scram.password\", \"jid\": \"fallback@scram.$XMPP_DOMAIN\"},
  \"dir\": \"$dir\", \"log\": \"$dir/prosody.log\", \"pidFile\": \"$dir/prosody.pid\"}"
}

prosody_down() { stop_pidfile "$STATE/prosody/prosody.pid" prosody; }

prosody_status() {
  if alive "$STATE/prosody/prosody.pid" prosody; then say_status prosody up "c2s 127.0.0.1:$PROSODY_PORT ($XMPP_DOMAIN)"
  else say_status prosody down "no live pid in $STATE/prosody/prosody.pid"; fi
}
