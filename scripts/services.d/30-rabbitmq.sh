# rabbitmq: the AMQP 0-9-1 broker of the data plane (RabbitMQ 3.10), TLS only, on 127.0.0.1:25671.
# - Runs as root with its own node name (intercloud@localhost), Erlang cookie, epmd (port 25369,
#   started here, bound to 127.0.0.1) and distribution port 25672 on 127.0.0.1 only.
# - TLS with the server certificate from $STATE/pki, verify_peer against the Intercloud Root.
#   Gateways log in with SASL EXTERNAL (rabbitmq_auth_mechanism_ssl): the user is the client
#   certificate's CN, i.e. the cloud id. A connection without a client certificate can still use
#   PLAIN (for the admin user below) but EXTERNAL without one is refused.
# - Users, vhosts and permissions come from $STATE/rabbitmq/definitions.json, loaded at boot
#   (rabbitmqctl costs ~1.7 s a call): vhost `intercloud`; users cloud-a, cloud-b, cloud-c (no
#   password: EXTERNAL only), each limited to the resources of its own transfers; `intercloud-admin` (administrator, PLAIN
#   with a random password) with full permissions on `/` and `intercloud`.
#   The transfer engine owns the exact permission regexes: edit rabbitmq_definitions below.
# - $STATE/rabbitmq/rabbitmqctl is rabbitmqctl wired to this node (e.g. `… add_vhost run-42`).
# No plain (non-TLS) listener, no management plugin.
#
# services.json: rabbitmq: { host, port, url, vhost, servername, tls: {ca},
#   users: {<cloud>: {cert, key}}, admin: {username, password}, ctl, nodeName, dir, log, pidFile }

rabbitmq_packages="rabbitmq-server"
RABBITMQ_PORT=25671
RABBITMQ_DIST_PORT=25672
RABBITMQ_EPMD_PORT=25369
RABBITMQ_NODE=intercloud@localhost

# rabbitmq_definitions ADMIN_PASSWORD — the broker's users, vhosts and permissions (JSON).
rabbitmq_definitions() {
  node -e '
    const crypto = require("crypto");
    const [adminPassword, ...clouds] = process.argv.slice(1);
    // rabbit_password_hashing_sha256: base64(salt ‖ SHA-256(salt ‖ password)), 4-byte salt
    const salt = crypto.createHash("sha256").update("intercloud-admin:" + adminPassword).digest().subarray(0, 4);
    const hash = Buffer.concat([salt, crypto.createHash("sha256").update(Buffer.concat([salt, Buffer.from(adminPassword)])).digest()]);
    const user = (name, password_hash, tags) => ({ name, password_hash, hashing_algorithm: "rabbit_password_hashing_sha256", tags });
    const all = (u, vhost) => ({ user: u, vhost, configure: ".*", write: ".*", read: ".*" });
    // A cloud reaches only the exchange and queues of transfers it is part of: their names embed
    // both cloud ids (protocols/amqp/naming.ts permissionPattern); no default exchange.
    const transfers = (c) => {
      const id = c.replace(/-/g, "\\-");
      const re = `^xfer\\.(${id}\\.[a-z0-9-]+|[a-z0-9-]+\\.${id})\\.[0-9a-f-]{36}(\\.(data|ctl))?$`;
      return { user: c, vhost: "intercloud", configure: re, write: re, read: re };
    };
    const defs = {
      vhosts: [{ name: "/" }, { name: "intercloud" }],
      users: [user("intercloud-admin", hash.toString("base64"), ["administrator"]), ...clouds.map((c) => user(c, "", []))],
      permissions: [all("intercloud-admin", "/"), all("intercloud-admin", "intercloud"), ...clouds.map(transfers)],
    };
    process.stdout.write(JSON.stringify(defs, null, 2) + "\n");
  ' "$1" $PKI_CLOUDS
}

rabbitmq_up() {
  local dir=$STATE/rabbitmq pki=$STATE/pki s; s=$(now)
  mkdir -p "$dir/home" "$dir/log" "$dir/mnesia"; chmod 700 "$dir"
  [ -s "$dir/home/.erlang.cookie" ] || { secret "$dir/cookie" > "$dir/home/.erlang.cookie"; chmod 400 "$dir/home/.erlang.cookie"; }
  local pw restart=0; pw=$(secret "$dir/admin.password")
  update_file "$dir/env.sh" <<ENV && restart=1
export HOME=$dir/home RABBITMQ_CONF_ENV_FILE=/dev/null RABBITMQ_NODENAME=$RABBITMQ_NODE
export RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins
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
  local defkey; defkey=$( { echo "$pw $PKI_CLOUDS"; declare -f rabbitmq_definitions; } | sha256sum | cut -c1-16)
  if [ ! -s "$dir/definitions.json" ] || [ "$(cat "$dir/definitions.key" 2>/dev/null)" != "$defkey" ]; then
    rabbitmq_definitions "$pw" | update_file "$dir/definitions.json" 600 && restart=1
    echo "$defkey" > "$dir/definitions.key"
  fi
  update_file "$dir/rabbitmq.conf" 600 <<CONF && restart=1
# certificates: $(cat "$pki/rabbitmq.pem" "$pki/root.pem" | sha256sum | cut -c1-16) (a change restarts the broker)
listeners.tcp = none
listeners.ssl.default = 127.0.0.1:$RABBITMQ_PORT
ssl_options.cacertfile = $pki/root.pem
ssl_options.certfile = $pki/rabbitmq.pem
ssl_options.keyfile = $pki/rabbitmq.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
auth_mechanisms.1 = EXTERNAL
auth_mechanisms.2 = PLAIN
ssl_cert_login_from = common_name
load_definitions = $dir/definitions.json
default_user = intercloud-admin
default_pass = $pw
loopback_users = none
log.file.level = info
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
  rabbitmq_env
  took rabbitmq "$s"
}

rabbitmq_env() {
  local dir=$STATE/rabbitmq pki=$STATE/pki users="" sep="" c
  for c in $PKI_CLOUDS; do users+="$sep\"$c\": {\"cert\": \"$pki/$c.pem\", \"key\": \"$pki/$c.key\"}"; sep=", "; done
  write_env rabbitmq "{\"host\": \"127.0.0.1\", \"port\": $RABBITMQ_PORT, \"url\": \"amqps://127.0.0.1:$RABBITMQ_PORT/intercloud\",
  \"vhost\": \"intercloud\", \"servername\": \"localhost\", \"tls\": {\"ca\": \"$pki/root.pem\"}, \"users\": {$users},
  \"admin\": {\"username\": \"intercloud-admin\", \"password\": \"$(cat "$dir/admin.password")\"},
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
