# rabbitmq: the AMQP 0-9-1 broker of the data plane (RabbitMQ 3.10), TLS only, on 127.0.0.1:25671.
# - Runs as root with its own node name (intercloud@localhost), Erlang cookie, epmd (port 25369,
#   started here, bound to 127.0.0.1) and distribution port 25672 on 127.0.0.1 only.
# - TLS with the server certificate from $STATE/pki, verify_peer against the Intercloud Root and
#   its CRL, and a client certificate is required (fail_if_no_peer_cert). The only SASL mechanism
#   is EXTERNAL (rabbitmq_auth_mechanism_ssl): the user is the client certificate's CN, i.e. the
#   cloud id. There is no password login at all on this listener, the one other clouds reach.
# - Revocation: crl_check with ssl_crl_hash_dir, which reads $dir/crl/<issuer hash>.r0 at every
#   handshake: a link to $STATE/pki/crl.pem, so a re-issued CRL is live at once. An expired CRL
#   refuses every client (closed). ssl_options live in advanced.config (crl_cache has no
#   rabbitmq.conf key, and advanced.config replaces the whole ssl_options list).
# - Users, vhosts and permissions come from $STATE/rabbitmq/definitions.json, loaded at boot
#   (rabbitmqctl costs ~1.7 s a call): vhost `intercloud`; users cloud-a, cloud-b, cloud-c (no
#   password: EXTERNAL only), each limited to the resources of its own transfers. There is no
#   administrator user: the operator manages the broker with rabbitmqctl (Erlang distribution on
#   127.0.0.1, authenticated by the root-only cookie in $dir/home). After a (re)start `up` deletes
#   `guest` and the former `intercloud-admin` should the node's database still hold them.
#   The transfer engine owns the exact permission regexes: edit rabbitmq_definitions below.
# - $STATE/rabbitmq/rabbitmqctl is rabbitmqctl wired to this node (e.g. `… add_vhost run-42`);
#   only root can use it (the cookie is 0400 in a 0700 directory).
# No plain (non-TLS) listener, no management plugin.
#
# services.json: rabbitmq: { host, port, url, vhost, servername, tls: {ca},
#   users: {<cloud>: {cert, key}}, ctl, nodeName, dir, log, pidFile }

rabbitmq_packages="rabbitmq-server"
RABBITMQ_PORT=25671
RABBITMQ_DIST_PORT=25672
RABBITMQ_EPMD_PORT=25369
RABBITMQ_NODE=intercloud@localhost

# rabbitmq_definitions — the broker's users, vhosts and permissions (JSON).
rabbitmq_definitions() {
  node -e '
    const clouds = process.argv.slice(1);
    // no password hash: these users can only log in by certificate (EXTERNAL)
    const user = (name) => ({ name, password_hash: "", hashing_algorithm: "rabbit_password_hashing_sha256", tags: [] });
    // A cloud reaches only the exchange and queues of transfers it is part of: their names embed
    // both cloud ids (protocols/amqp/naming.ts permissionPattern); no default exchange.
    const transfers = (c) => {
      const id = c.replace(/-/g, "\\-");
      const re = `^xfer\\.(${id}\\.[a-z0-9-]+|[a-z0-9-]+\\.${id})\\.[0-9a-f-]{36}(\\.(data|ctl))?$`;
      return { user: c, vhost: "intercloud", configure: re, write: re, read: re };
    };
    const defs = {
      vhosts: [{ name: "/" }, { name: "intercloud" }],
      users: clouds.map(user),
      permissions: clouds.map(transfers),
    };
    process.stdout.write(JSON.stringify(defs, null, 2) + "\n");
  ' $PKI_CLOUDS
}

rabbitmq_up() {
  local dir=$STATE/rabbitmq pki=$STATE/pki s; s=$(now)
  mkdir -p "$dir/home" "$dir/log" "$dir/mnesia"; chmod 700 "$dir"
  [ -s "$dir/home/.erlang.cookie" ] || { secret "$dir/cookie" > "$dir/home/.erlang.cookie"; chmod 400 "$dir/home/.erlang.cookie"; }
  local restart=0
  update_file "$dir/env.sh" <<ENV && restart=1
export HOME=$dir/home RABBITMQ_CONF_ENV_FILE=/dev/null RABBITMQ_NODENAME=$RABBITMQ_NODE
export RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins
export RABBITMQ_ADVANCED_CONFIG_FILE=$dir/advanced.config
export RABBITMQ_MNESIA_BASE=$dir/mnesia RABBITMQ_LOG_BASE=$dir/log RABBITMQ_PID_FILE=$dir/rabbitmq.pid
export RABBITMQ_DIST_PORT=$RABBITMQ_DIST_PORT ERL_EPMD_PORT=$RABBITMQ_EPMD_PORT ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
ENV
  update_file "$dir/rabbitmqctl" 755 <<CTL || true
#!/bin/sh
# rabbitmqctl for the intercloud dev broker (written by scripts/services.d/30-rabbitmq.sh).
. "$dir/env.sh"
exec /usr/lib/rabbitmq/bin/rabbitmqctl "\$@"
CTL
  echo '[rabbitmq_auth_mechanism_ssl].' | update_file "$dir/enabled_plugins" && restart=1
  # Regenerated (a node process) only when its inputs or its generator changed.
  local defkey; defkey=$( { echo "$PKI_CLOUDS"; declare -f rabbitmq_definitions; } | sha256sum | cut -c1-16)
  if [ ! -s "$dir/definitions.json" ] || [ "$(cat "$dir/definitions.key" 2>/dev/null)" != "$defkey" ]; then
    rabbitmq_definitions | update_file "$dir/definitions.json" 600 && restart=1
    echo "$defkey" > "$dir/definitions.key"
  fi
  # The CRL where ssl_crl_hash_dir looks for it (<issuer name hash>.r0), read at each handshake:
  # a link to the PKI's crl.pem, so a CRL re-issued there (`ca crl` renames) is live at once.
  mkdir -p "$dir/crl"
  local crlhash; crlhash=$(openssl crl -in "$pki/crl.pem" -noout -hash)
  [ "$(readlink "$dir/crl/$crlhash.r0" 2>/dev/null)" = "$pki/crl.pem" ] || ln -sfn "$pki/crl.pem" "$dir/crl/$crlhash.r0"
  find "$dir/crl" -name '*.r[0-9]*' ! -name "$crlhash.r0" -delete
  update_file "$dir/rabbitmq.conf" 600 <<CONF && restart=1
# certificates: $(cat "$pki/rabbitmq.pem" "$pki/root.pem" | sha256sum | cut -c1-16) (a change restarts the broker)
listeners.tcp = none
listeners.ssl.default = 127.0.0.1:$RABBITMQ_PORT
auth_mechanisms.1 = EXTERNAL
ssl_cert_login_from = common_name
load_definitions = $dir/definitions.json
log.file.level = info
CONF
  update_file "$dir/advanced.config" 600 <<CONF && restart=1
%% TLS of the AMQPS listener (written by scripts/services.d/30-rabbitmq.sh).
[{rabbit, [{ssl_options, [
  {cacertfile, "$pki/root.pem"}, {certfile, "$pki/rabbitmq.pem"}, {keyfile, "$pki/rabbitmq.key"},
  {verify, verify_peer}, {fail_if_no_peer_cert, true},
  {crl_check, true}, {crl_cache, {ssl_crl_hash_dir, {internal, [{dir, "$dir/crl"}]}}}
]}]}].
CONF
  if alive "$dir/rabbitmq.pid" beam; then
    [ "$restart" = 1 ] || { rabbitmq_env; return 0; }
    log "rabbitmq configuration changed: restarting"; stop_pidfile "$dir/rabbitmq.pid" beam rabbitmq
  fi
  (
    . "$dir/env.sh"
    if ! alive "$dir/epmd.pid" epmd; then
      setsid epmd -address 127.0.0.1 -port "$RABBITMQ_EPMD_PORT" </dev/null >"$dir/log/epmd.out" 2>&1 &
      echo $! > "$dir/epmd.pid"
    fi
    rm -f "$dir/rabbitmq.pid"
    # the /usr/sbin wrappers switch to the rabbitmq user and drop this environment
    /usr/lib/rabbitmq/bin/rabbitmq-server -detached >"$dir/log/start.out" 2>&1
  )
  waitport "$RABBITMQ_PORT"
  # Users an older configuration (or a fresh database) made: no one logs in by password here.
  local u
  for u in $("$dir/rabbitmqctl" list_users --quiet --no-table-headers 2>/dev/null | awk '{print $1}'); do
    case $u in guest|intercloud-admin) "$dir/rabbitmqctl" delete_user "$u" >/dev/null && log "rabbitmq: deleted user $u" ;; esac
  done
  rm -f "$dir/admin.password"
  rabbitmq_env
  took rabbitmq "$s"
}

rabbitmq_env() {
  local dir=$STATE/rabbitmq pki=$STATE/pki users="" sep="" c
  for c in $PKI_CLOUDS; do users+="$sep\"$c\": {\"cert\": \"$pki/$c.pem\", \"key\": \"$pki/$c.key\"}"; sep=", "; done
  write_env rabbitmq "{\"host\": \"127.0.0.1\", \"port\": $RABBITMQ_PORT, \"url\": \"amqps://127.0.0.1:$RABBITMQ_PORT/intercloud\",
  \"vhost\": \"intercloud\", \"servername\": \"localhost\", \"tls\": {\"ca\": \"$pki/root.pem\"}, \"users\": {$users},
  \"ctl\": \"$dir/rabbitmqctl\", \"nodeName\": \"$RABBITMQ_NODE\", \"dir\": \"$dir\", \"log\": \"$dir/log\",
  \"pidFile\": \"$dir/rabbitmq.pid\"}"
}

rabbitmq_down() {
  stop_pidfile "$STATE/rabbitmq/rabbitmq.pid" beam rabbitmq
  stop_pidfile "$STATE/rabbitmq/epmd.pid" epmd rabbitmq-epmd
}

rabbitmq_status() {
  if alive "$STATE/rabbitmq/rabbitmq.pid" beam; then say_status rabbitmq up "amqps 127.0.0.1:$RABBITMQ_PORT (node $RABBITMQ_NODE)"
  else say_status rabbitmq down "no live pid in $STATE/rabbitmq/rabbitmq.pid"; fi
}
