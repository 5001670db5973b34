# rabbitmq: the AMQP 0-9-1 brokers of the data plane (RabbitMQ 3.10), one per cloud that takes
# VMs — cloud-a's and cloud-b's (cloud-c, the attacker cloud of the tests, runs none). Nothing
# is shared between the two but the Intercloud Root: each has its own node, Erlang cookie, epmd,
# data directory, server certificate and users.
#
#   cloud   node                  amqps   dist    epmd    management (http, 127.0.0.1)  dir
#   cloud-a intercloud@localhost  25671   25672   25369   25675                         $STATE/rabbitmq
#   cloud-b intercloud-b@localhost 25681  25682   25379   25685                         $STATE/rabbitmq-cloud-b
#
# - Runs as root, distribution on 127.0.0.1 only (inet_dist_use_interface), epmd started here.
# - TLS only, with the broker's own certificate from $STATE/pki (identity `broker.<cloud>.
#   intercloud.test`, see 10-pki.sh), verify_peer against the Intercloud Root and its CRL, and a
#   client certificate is required (fail_if_no_peer_cert). The only SASL mechanism is EXTERNAL
#   (rabbitmq_auth_mechanism_ssl): the user is the client certificate's CN, i.e. the cloud id.
#   There is no password login on this listener, the one other clouds reach.
# - Revocation: crl_check with ssl_crl_hash_dir, which reads $dir/crl/<issuer hash>.r0 at every
#   handshake: a link to $STATE/pki/crl.pem, so a re-issued CRL is live at once. An expired CRL
#   refuses every client (closed). ssl_options live in advanced.config. TLS 1.3 is on: in it
#   the server shows its certificate before it asks for the client's, which is how a source
#   checks a broker's identity before it presents its own certificate there (issue 13).
# - vhost `transfers`: the gateways' transfers INTO the broker's cloud. Users from
#   definitions.json (loaded at boot): the broker's own cloud (its agent: the resources of
#   transfers into it) and `_agent` (tag administrator, no vhost permission; password in
#   $dir/agent.password, 0600), the credential the local agent uses on the management API
#   (HTTP on 127.0.0.1 only) to grant a peer — user = its cloud id, EXTERNAL — the resources of
#   exactly the offers it accepted, and to withdraw them (agent/daemon/broker-grants.ts). A
#   peer has no user and no permission here until its offer is accepted. `_agent` is not a
#   valid cloud id, so no gateway certificate's CN maps to it.
# - cloud-a's broker also keeps, for the protocol-level tests, the former shared vhost
#   `intercloud` with static users cloud-a, cloud-b, cloud-c each limited to the resources of
#   transfers naming it (services.json `rabbitmq`, unchanged). No agent uses it.
# - $dir/rabbitmqctl is rabbitmqctl wired to that node; only root can use it.
#
# services.json:
#   rabbitmq: { host, port, url, vhost, servername, tls: {ca}, users: {<cloud>: {cert, key}}, ctl,
#               nodeName, dir, log, pidFile }                               (cloud-a's broker)
#   brokers:  { <cloud>: { host, port, url, vhost, identity, tls: {ca}, ctl, nodeName, dir, log,
#               pidFile, management: {url, user, passwordFile} } }

rabbitmq_packages="rabbitmq-server"
RABBITMQ_BROKERS="cloud-a cloud-b"
# legacy names (cloud-a's broker)
RABBITMQ_PORT=25671
RABBITMQ_NODE=intercloud@localhost

# broker_vars CLOUD — sets b_dir b_node b_port b_dist b_epmd b_mgmt b_cert b_identity for CLOUD's broker.
broker_vars() {
  b_identity="broker.$1.$XMPP_DOMAIN"
  case $1 in
    cloud-a) b_dir=$STATE/rabbitmq b_node=intercloud@localhost b_port=25671 b_dist=25672 b_epmd=25369 b_mgmt=25675 b_cert=rabbitmq ;;
    cloud-b) b_dir=$STATE/rabbitmq-cloud-b b_node=intercloud-b@localhost b_port=25681 b_dist=25682 b_epmd=25379 b_mgmt=25685 b_cert=broker-cloud-b ;;
    *) echo "services: no broker for '$1'" >&2; return 1 ;;
  esac
}

# rabbitmq_definitions CLOUD AGENT_PASSWORD_FILE — the broker's users, vhosts and permissions (JSON).
rabbitmq_definitions() {
  node -e '
    const crypto = require("crypto"), fs = require("fs");
    const [owner, passwordFile, ...legacy] = process.argv.slice(1);
    const esc = (c) => c.replace(/-/g, "\\-");
    // no password hash: these users can only log in by certificate (EXTERNAL)
    const user = (name) => ({ name, password_hash: "", hashing_algorithm: "rabbit_password_hashing_sha256", tags: [] });
    // rabbit_password_hashing_sha256: base64(salt(4) ++ sha256(salt ++ password))
    const salt = crypto.randomBytes(4);
    const hash = Buffer.concat([salt, crypto.createHash("sha256").update(Buffer.concat([salt, fs.readFileSync(passwordFile)])).digest()]).toString("base64");
    const users = [user(owner), { name: "_agent", password_hash: hash, hashing_algorithm: "rabbit_password_hashing_sha256", tags: ["administrator"] }];
    // The broker cloud`s own agent: the exchange and queues of transfers into it (the names
    // embed both cloud ids, protocols/amqp/naming.ts); peers are granted per offer at run time.
    const inbound = `^xfer\\.[a-z0-9-]+\\.${esc(owner)}\\.[0-9a-f-]{36}(\\.(data|ctl))?$`;
    const permissions = [{ user: owner, vhost: "transfers", configure: inbound, write: inbound, read: inbound }];
    const vhosts = [{ name: "/" }, { name: "transfers" }];
    if (legacy.length) {
      // The former shared vhost (cloud-a`s broker only), for the protocol-level tests.
      vhosts.push({ name: "intercloud" });
      for (const c of legacy) {
        if (c !== owner) users.push(user(c));
        const id = esc(c);
        const re = `^xfer\\.(${id}\\.[a-z0-9-]+|[a-z0-9-]+\\.${id})\\.[0-9a-f-]{36}(\\.(data|ctl))?$`;
        permissions.push({ user: c, vhost: "intercloud", configure: re, write: re, read: re });
      }
    }
    process.stdout.write(JSON.stringify({ vhosts, users, permissions }, null, 2) + "\n");
  ' "$@"
}

# broker_up CLOUD — starts (or restarts on a changed configuration) CLOUD's broker.
broker_up() {
  local cloud=$1 b_dir b_node b_port b_dist b_epmd b_mgmt b_cert b_identity pki=$STATE/pki s; s=$(now)
  broker_vars "$cloud"
  local dir=$b_dir
  mkdir -p "$dir/home" "$dir/log" "$dir/mnesia"; chmod 700 "$dir"
  [ -s "$dir/home/.erlang.cookie" ] || { secret "$dir/cookie" > "$dir/home/.erlang.cookie"; chmod 400 "$dir/home/.erlang.cookie"; }
  secret "$dir/agent.password" >/dev/null
  local restart=0
  update_file "$dir/env.sh" <<ENV && restart=1
export HOME=$dir/home RABBITMQ_CONF_ENV_FILE=/dev/null RABBITMQ_NODENAME=$b_node
export RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins
export RABBITMQ_ADVANCED_CONFIG_FILE=$dir/advanced.config
export RABBITMQ_MNESIA_BASE=$dir/mnesia RABBITMQ_LOG_BASE=$dir/log RABBITMQ_PID_FILE=$dir/rabbitmq.pid
export RABBITMQ_DIST_PORT=$b_dist ERL_EPMD_PORT=$b_epmd ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
ENV
  update_file "$dir/rabbitmqctl" 755 <<CTL || true
#!/bin/sh
# rabbitmqctl for $cloud's dev broker (written by scripts/services.d/30-rabbitmq.sh).
. "$dir/env.sh"
exec /usr/lib/rabbitmq/bin/rabbitmqctl "\$@"
CTL
  echo '[rabbitmq_auth_mechanism_ssl,rabbitmq_management].' | update_file "$dir/enabled_plugins" && restart=1
  # Regenerated (a node process) only when its inputs or its generator changed.
  local legacy="" defkey
  [ "$cloud" = cloud-a ] && legacy=$PKI_CLOUDS
  defkey=$( { echo "$cloud $legacy"; sha256sum < "$dir/agent.password"; declare -f rabbitmq_definitions; } | sha256sum | cut -c1-16)
  if [ ! -s "$dir/definitions.json" ] || [ "$(cat "$dir/definitions.key" 2>/dev/null)" != "$defkey" ]; then
    # shellcheck disable=SC2086
    rabbitmq_definitions "$cloud" "$dir/agent.password" $legacy | update_file "$dir/definitions.json" 600 && restart=1
    echo "$defkey" > "$dir/definitions.key"
  fi
  mkdir -p "$dir/crl"
  local crlhash; crlhash=$(openssl crl -in "$pki/crl.pem" -noout -hash)
  [ "$(readlink "$dir/crl/$crlhash.r0" 2>/dev/null)" = "$pki/crl.pem" ] || ln -sfn "$pki/crl.pem" "$dir/crl/$crlhash.r0"
  find "$dir/crl" -name '*.r[0-9]*' ! -name "$crlhash.r0" -delete
  update_file "$dir/rabbitmq.conf" 600 <<CONF && restart=1
# certificates: $(cat "$pki/$b_cert.pem" "$pki/root.pem" | sha256sum | cut -c1-16) (a change restarts the broker)
listeners.tcp = none
listeners.ssl.default = 127.0.0.1:$b_port
auth_mechanisms.1 = EXTERNAL
ssl_cert_login_from = common_name
load_definitions = $dir/definitions.json
log.file.level = info
management.tcp.ip = 127.0.0.1
management.tcp.port = $b_mgmt
management.disable_stats = true
management_agent.disable_metrics_collector = true
# a transfer receiver holds each unacked message whole: no message above MAX_TRANSFER_MESSAGE_BYTES
# (protocols/amqp/receiver-machine.ts, 16 MiB + 4 KiB), not RabbitMQ's default 128 MiB
max_message_size = 16781312
CONF
  update_file "$dir/advanced.config" 600 <<CONF && restart=1
%% TLS of the AMQPS listener (written by scripts/services.d/30-rabbitmq.sh).
[{rabbit, [{ssl_options, [
  {cacertfile, "$pki/root.pem"}, {certfile, "$pki/$b_cert.pem"}, {keyfile, "$pki/$b_cert.key"},
  {versions, ['tlsv1.3', 'tlsv1.2']},
  {verify, verify_peer}, {fail_if_no_peer_cert, true},
  {crl_check, true}, {crl_cache, {ssl_crl_hash_dir, {internal, [{dir, "$dir/crl"}]}}}
]}]}].
CONF
  if alive "$dir/rabbitmq.pid" beam; then
    [ "$restart" = 1 ] && { log "rabbitmq ($cloud) configuration changed: restarting"; stop_pidfile "$dir/rabbitmq.pid" beam "rabbitmq ($cloud)"; }
  fi
  if ! alive "$dir/rabbitmq.pid" beam; then
    (
      . "$dir/env.sh"
      if ! alive "$dir/epmd.pid" epmd; then
        setsid epmd -address 127.0.0.1 -port "$b_epmd" </dev/null >"$dir/log/epmd.out" 2>&1 &
        echo $! > "$dir/epmd.pid"
      fi
      rm -f "$dir/rabbitmq.pid"
      ensure_port_free "$b_port" "rabbitmq ($cloud)"
      # the /usr/sbin wrappers switch to the rabbitmq user and drop this environment
      /usr/lib/rabbitmq/bin/rabbitmq-server -detached >"$dir/log/start.out" 2>&1
    )
    waitport "$b_port"
    waitport "$b_mgmt"
    # Users an older configuration (or a fresh database) made: no one logs in by password here
    # but the local agent on the management listener.
    local u
    for u in $("$dir/rabbitmqctl" list_users --quiet --no-table-headers 2>/dev/null | awk '{print $1}'); do
      case $u in guest|intercloud-admin) "$dir/rabbitmqctl" delete_user "$u" >/dev/null && log "rabbitmq ($cloud): deleted user $u" ;; esac
    done
    rm -f "$dir/admin.password"
    took "rabbitmq-$cloud" "$s"
  fi
}

rabbitmq_up() {
  local c
  for c in $RABBITMQ_BROKERS; do broker_up "$c"; done
  rabbitmq_env
}

rabbitmq_env() {
  local pki=$STATE/pki users="" sep="" c brokers="" b_dir b_node b_port b_dist b_epmd b_mgmt b_cert b_identity
  for c in $PKI_CLOUDS; do users+="$sep\"$c\": {\"cert\": \"$pki/$c.pem\", \"key\": \"$pki/$c.key\"}"; sep=", "; done
  broker_vars cloud-a
  write_env rabbitmq "{\"host\": \"127.0.0.1\", \"port\": $b_port, \"url\": \"amqps://127.0.0.1:$b_port/intercloud\",
  \"vhost\": \"intercloud\", \"servername\": \"localhost\", \"tls\": {\"ca\": \"$pki/root.pem\"}, \"users\": {$users},
  \"ctl\": \"$b_dir/rabbitmqctl\", \"nodeName\": \"$b_node\", \"dir\": \"$b_dir\", \"log\": \"$b_dir/log\",
  \"pidFile\": \"$b_dir/rabbitmq.pid\"}"
  sep=""
  for c in $RABBITMQ_BROKERS; do
    broker_vars "$c"
    brokers+="$sep\"$c\": {\"host\": \"127.0.0.1\", \"port\": $b_port, \"url\": \"amqps://127.0.0.1:$b_port/transfers\",
    \"vhost\": \"transfers\", \"identity\": \"$b_identity\", \"tls\": {\"ca\": \"$pki/root.pem\"},
    \"ctl\": \"$b_dir/rabbitmqctl\", \"nodeName\": \"$b_node\", \"dir\": \"$b_dir\", \"log\": \"$b_dir/log\", \"pidFile\": \"$b_dir/rabbitmq.pid\",
    \"management\": {\"url\": \"http://127.0.0.1:$b_mgmt\", \"user\": \"_agent\", \"passwordFile\": \"$b_dir/agent.password\"}}"
    sep=", "
  done
  write_env brokers "{$brokers}"
}

rabbitmq_down() {
  local c b_dir b_node b_port b_dist b_epmd b_mgmt b_cert b_identity
  for c in $RABBITMQ_BROKERS; do
    broker_vars "$c"
    stop_pidfile "$b_dir/rabbitmq.pid" beam "rabbitmq ($c)"
    stop_pidfile "$b_dir/epmd.pid" epmd "rabbitmq-epmd ($c)"
  done
}

rabbitmq_status() {
  local c rc=0 up="" b_dir b_node b_port b_dist b_epmd b_mgmt b_cert b_identity
  for c in $RABBITMQ_BROKERS; do
    broker_vars "$c"
    if alive "$b_dir/rabbitmq.pid" beam; then up+="${up:+; }$c amqps 127.0.0.1:$b_port (node $b_node)"
    else say_status rabbitmq down "$c: no live pid in $b_dir/rabbitmq.pid"; rc=1; fi
  done
  [ "$rc" = 0 ] && say_status rabbitmq up "$up"
  return $rc
}
