# swift: each cloud's own object store (issue 14), OpenStack Swift 2.30 from Debian 12 with the
# `s3api` middleware and `tempauth`. Two independent clusters, cloud-a's and cloud-b's: each has
# its own folder, rings, ports, memcached and S3 credentials; nothing is shared between them but
# Debian's /etc/swift/swift.conf (hash path prefix/suffix and storage policy 0, read by every
# Swift process from that fixed path; `up` writes one only where none exists).
#
#   cloud   proxy (S3)  object  container  account  memcached  ring regions (object ring)
#   cloud-a 26080       26010   26011      26012    26021      r1 eu-west (d1 z1, d2 z2), r2 eu-central (d3 z1)
#   cloud-b 26180       26110   26111      26112    26121      r1 na-east (d1 z1, d2 z2, d3 z3)
#
# - Object ring: 3 replicas over three devices, each a plain folder $dir/srv/d1..d3 (a test may
#   wipe one), so every object has one replica on each device. The container and account rings
#   have 1 replica on a device of their own ($dir/srv/meta), which no device fault touches.
#   Rings are made once (and again only when the layout below changes, from scratch).
# - All servers on 127.0.0.1, workers 0, user root, mount_check false, disable_fallocate true,
#   recon cache in $dir/run; the proxy shuns a failed device for 1 s (error_suppression_interval),
#   not 60, so fault tests do not wait. No replicator, auditor or updater daemon runs: a test
#   runs `swift-object-replicator <objectConf> once` itself (sync_method ssync, no rsync).
# - Proxy pipeline as in shared/docs/real-services.md (s3api before tempauth; `cache` is
#   required by the proxy, memcached makes it useful); account_autocreate. The S3 access key is
#   `<cloud>:agent`, its secret made at the first `up` in $dir/s3-secret-key (0600); it is also
#   in proxy-server.conf (tempauth reads it there), which is therefore 0600 as well.
# - `up` leaves a server alone when its pid is alive and its /healthcheck answers; a dead (or
#   unhealthy) one is started again; a changed configuration or ring restarts that cloud.
#
# services.json: swift: { <cloud>: { endpoint, region, regions: [..], accessKeyId,
#   secretAccessKeyFile, account, proxyConf, objectConf, containerConf, accountConf, swiftDir,
#   objectRing, replicas, devicesDir, devices: [{name, ringRegion, zone, region, path}],
#   ringRegions: {"<n>": "<name>"}, ports: {proxy, object, container, account, memcached},
#   dir, logs: {..}, pidFiles: {..} } } — secrets only in files, never in services.json.

# curl: the health checks below (a fresh machine may have none when swift is brought up alone).
# rclone: the anchor of the replication benchmark (bench/storage/replication.ts, `rclone sync`
# between the two clusters' S3 endpoints).
swift_packages="swift-proxy swift-object swift-container swift-account memcached curl rclone"
SWIFT_CLOUDS="cloud-a cloud-b"
SWIFT_SERVERS="account container object proxy"

# swift_vars CLOUD — sets sw_dir sw_base (port base) sw_region (the S3 region name)
# sw_devices ("name:ringRegion:zone …") sw_regions ("ringRegion:name …") for CLOUD.
swift_vars() {
  sw_dir=$STATE/swift/$1
  case $1 in
    cloud-a) sw_base=26000 sw_region=eu-west sw_devices="d1:1:1 d2:1:2 d3:2:1" sw_regions="1:eu-west 2:eu-central" ;;
    cloud-b) sw_base=26100 sw_region=na-east sw_devices="d1:1:1 d2:1:2 d3:1:3" sw_regions="1:na-east" ;;
    *) echo "services: no swift for '$1'" >&2; return 1 ;;
  esac
}

# swift_port BASE SERVER — the port of SERVER (account|container|object|proxy|memcached).
swift_port() {
  case $2 in
    object) echo $(($1 + 10)) ;; container) echo $(($1 + 11)) ;; account) echo $(($1 + 12)) ;;
    memcached) echo $(($1 + 21)) ;; proxy) echo $(($1 + 80)) ;;
  esac
}

# swift_region_name N — the geographic name of ring region N in $sw_regions.
swift_region_name() {
  local r
  for r in $sw_regions; do [ "${r%%:*}" = "$1" ] && { echo "${r#*:}"; return 0; }; done
  echo "services: swift ring region $1 has no name" >&2; return 1
}

# swift_healthy PORT — true when the Swift server on PORT answers its /healthcheck with OK.
swift_healthy() { [ "$(curl -sf -m 2 "http://127.0.0.1:$1/healthcheck" 2>/dev/null)" = OK ]; }

# swift_backend_conf CLOUD SERVER PORT — the account/container/object server's configuration.
swift_backend_conf() {
  local cloud=$1 server=$2 port=$3
  cat <<CONF
# $cloud's Swift $server server (written by scripts/services.d/72-swift.sh).
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $port
workers = 0
user = root
swift_dir = $sw_dir/etc
devices = $sw_dir/srv
mount_check = false
disable_fallocate = true
log_name = swift-$cloud-$server
log_level = INFO
recon_cache_path = $sw_dir/run

[pipeline:main]
pipeline = healthcheck recon $server-server

[app:$server-server]
use = egg:swift#$server

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:recon]
use = egg:swift#recon
recon_cache_path = $sw_dir/run

[$server-replicator]
CONF
  if [ "$server" = object ]; then
    cat <<CONF
sync_method = ssync
concurrency = 1

[object-auditor]

[object-updater]
CONF
  fi
}

# swift_proxy_conf CLOUD SECRET — the proxy's configuration (holds SECRET: written 0600).
swift_proxy_conf() {
  local cloud=$1 secret=$2
  cat <<CONF
# $cloud's Swift proxy with the S3 API (written by scripts/services.d/72-swift.sh).
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $(swift_port "$sw_base" proxy)
workers = 0
user = root
swift_dir = $sw_dir/etc
log_name = swift-$cloud-proxy
log_level = INFO

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl ratelimit s3api tempauth copy container-quotas account-quotas slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true
error_suppression_interval = 1

[filter:s3api]
use = egg:swift#s3api
location = $sw_region
allow_multipart_uploads = true

[filter:tempauth]
use = egg:swift#tempauth
user_${cloud}_agent = $secret .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$(swift_port "$sw_base" memcached)

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:tempurl]
use = egg:swift#tempurl
[filter:ratelimit]
use = egg:swift#ratelimit
[filter:copy]
use = egg:swift#copy
[filter:container-quotas]
use = egg:swift#container_quotas
[filter:account-quotas]
use = egg:swift#account_quotas
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
[filter:symlink]
use = egg:swift#symlink
CONF
}

# swift_rings CLOUD — (re)makes CLOUD's rings when missing or when their layout changed, and then
# sets sw_rings_made=1.
swift_rings() {
  local etc=$sw_dir/etc layout
  layout="object 3: $sw_devices @$(swift_port "$sw_base" object); container 1: meta @$(swift_port "$sw_base" container); account 1: meta @$(swift_port "$sw_base" account)"
  if [ -s "$etc/object.ring.gz" ] && [ -s "$etc/container.ring.gz" ] && [ -s "$etc/account.ring.gz" ] \
    && [ "$(cat "$etc/rings.layout" 2>/dev/null)" = "$layout" ]; then return 0; fi
  log "swift ($1): making rings ($layout)"
  rm -f "$etc"/*.builder "$etc"/*.ring.gz "$etc/rings.layout"; rm -rf "$etc/backups"
  # One Python process with Swift's own RingBuilder (what `swift-ring-builder create/add/
  # rebalance` does, at one start-up instead of twelve): /usr/bin/python3, the Python that
  # has Debian's swift, whatever python3 comes first on PATH.
  local devs="" d name rr zone
  for d in $sw_devices; do
    IFS=: read -r name rr zone <<<"$d"
    devs+=" object:$rr:$zone:$(swift_port "$sw_base" object):$name"
  done
  devs+=" container:1:1:$(swift_port "$sw_base" container):meta account:1:1:$(swift_port "$sw_base" account):meta"
  # shellcheck disable=SC2086 # the device specs are words by design
  /usr/bin/python3 - "$etc" $devs >"$sw_dir/log/rings.log" 2>&1 <<'PY' || { echo "services: swift ($1): making the rings failed, see $sw_dir/log/rings.log" >&2; return 1; }
import sys
from swift.common.ring import RingBuilder
etc, specs = sys.argv[1], sys.argv[2:]
replicas = {"object": 3, "container": 1, "account": 1}
for ring, n in replicas.items():
    b = RingBuilder(8, n, 0)  # 256 partitions, n replicas, no min_part_hours
    for spec in specs:
        kind, region, zone, port, device = spec.split(":")
        if kind == ring:
            b.add_dev({"region": int(region), "zone": int(zone), "ip": "127.0.0.1", "port": int(port),
                       "replication_ip": "127.0.0.1", "replication_port": int(port), "device": device,
                       "weight": 100.0, "meta": ""})
    b.rebalance(seed=1)
    b.validate()
    b.save(f"{etc}/{ring}.builder")
    b.get_ring().save(f"{etc}/{ring}.ring.gz")
    print(f"{ring}: {n} replicas, {len(b.devs)} devices, balance {b.get_balance():.2f}, dispersion {b.dispersion:.2f}")
PY
  echo "$layout" > "$etc/rings.layout"
  sw_rings_made=1
}

# swift_start CLOUD SERVER — starts one server of CLOUD in the background, its pid in run/.
swift_start() {
  local cloud=$1 server=$2 port pf=$sw_dir/run/$2.pid
  port=$(swift_port "$sw_base" "$server")
  rm -f "$pf"
  ensure_port_free "$port" "swift $server ($cloud)"
  if [ "$server" = memcached ]; then
    setsid memcached -u root -l 127.0.0.1 -p "$port" -U 0 -m 32 </dev/null >>"$sw_dir/log/memcached.log" 2>&1 &
  else
    setsid "/usr/bin/swift-$server-server" "$sw_dir/etc/$server-server.conf" --verbose </dev/null >>"$sw_dir/log/$server.log" 2>&1 &
  fi
  echo $! > "$pf"
}

# swift_word SERVER — what the command line of SERVER's process contains (for `alive`).
swift_word() { if [ "$1" = memcached ]; then echo memcached; else echo "$sw_dir/etc/$1-server.conf"; fi; }

# swift_cloud_up CLOUD — brings CLOUD's Swift up (see the header); waits until every server is healthy.
swift_cloud_up() {
  local cloud=$1 sw_dir sw_base sw_region sw_devices sw_regions s restart=0 srv d name rr zone started=""
  s=$(now)
  swift_vars "$cloud"
  mkdir -p "$sw_dir/etc" "$sw_dir/run" "$sw_dir/log" "$sw_dir/srv/meta"
  chmod 700 "$sw_dir"
  for d in $sw_devices; do mkdir -p "$sw_dir/srv/${d%%:*}"; done
  local secret; secret=$(secret "$sw_dir/s3-secret-key")
  for srv in account container object; do
    swift_backend_conf "$cloud" "$srv" "$(swift_port "$sw_base" "$srv")" | update_file "$sw_dir/etc/$srv-server.conf" && restart=1
  done
  swift_proxy_conf "$cloud" "$secret" | update_file "$sw_dir/etc/proxy-server.conf" 600 && restart=1
  local sw_rings_made=0
  swift_rings "$cloud"
  [ "$sw_rings_made" = 0 ] || restart=1
  for srv in memcached $SWIFT_SERVERS; do
    local pf=$sw_dir/run/$srv.pid port; port=$(swift_port "$sw_base" "$srv")
    if alive "$pf" "$(swift_word "$srv")"; then
      if [ "$restart" = 1 ] && [ "$srv" != memcached ]; then
        log "swift $srv ($cloud): configuration changed: restarting"; stop_pidfile "$pf" "$(swift_word "$srv")" "swift $srv ($cloud)"
      elif [ "$srv" != memcached ] && ! swift_healthy "$port"; then
        # a live process whose health check fails: give it the usual start-up time first
        local ok=0; for _ in $(seq 50); do swift_healthy "$port" && { ok=1; break; }; sleep 0.1; done
        [ "$ok" = 1 ] || { log "swift $srv ($cloud): not healthy: restarting"; stop_pidfile "$pf" "$(swift_word "$srv")" "swift $srv ($cloud)"; }
      fi
    fi
    alive "$pf" "$(swift_word "$srv")" || { swift_start "$cloud" "$srv"; started+=" $srv"; }
  done
  [ -n "$started" ] || return 0
  for srv in $started; do
    local port; port=$(swift_port "$sw_base" "$srv")
    if [ "$srv" = memcached ]; then waitport "$port"; continue; fi
    local ok=0
    for _ in $(seq 600); do
      swift_healthy "$port" && { ok=1; break; }
      alive "$sw_dir/run/$srv.pid" "$(swift_word "$srv")" || break
      sleep 0.1
    done
    [ "$ok" = 1 ] || { echo "services: swift $srv ($cloud) is not healthy on port $port, see $sw_dir/log/$srv.log" >&2; tail -5 "$sw_dir/log/$srv.log" >&2; return 1; }
  done
  took "swift-$cloud" "$s"
}

# swift_cloud_env CLOUD — CLOUD's entry of services.json `swift` (JSON).
swift_cloud_env() {
  local cloud=$1 sw_dir sw_base sw_region sw_devices sw_regions d name rr zone devs="" sep="" regs="" names="" r
  swift_vars "$cloud"
  for d in $sw_devices; do
    IFS=: read -r name rr zone <<<"$d"
    devs+="$sep{\"name\": \"$name\", \"ringRegion\": $rr, \"zone\": $zone, \"region\": \"$(swift_region_name "$rr")\", \"path\": \"$sw_dir/srv/$name\"}"
    sep=", "
  done
  sep=""
  for r in $sw_regions; do regs+="$sep\"${r%%:*}\": \"${r#*:}\""; names+="$sep\"${r#*:}\""; sep=", "; done
  local p=$sw_dir/run l=$sw_dir/log
  cat <<JSON
"$cloud": {"endpoint": "http://127.0.0.1:$(swift_port "$sw_base" proxy)", "region": "$sw_region", "regions": [$names],
    "accessKeyId": "$cloud:agent", "secretAccessKeyFile": "$sw_dir/s3-secret-key", "account": "AUTH_$cloud",
    "proxyConf": "$sw_dir/etc/proxy-server.conf", "objectConf": "$sw_dir/etc/object-server.conf",
    "containerConf": "$sw_dir/etc/container-server.conf", "accountConf": "$sw_dir/etc/account-server.conf",
    "swiftDir": "$sw_dir/etc", "objectRing": "$sw_dir/etc/object.ring.gz", "replicas": 3,
    "devicesDir": "$sw_dir/srv", "devices": [$devs], "ringRegions": {$regs},
    "ports": {"proxy": $(swift_port "$sw_base" proxy), "object": $(swift_port "$sw_base" object), "container": $(swift_port "$sw_base" container), "account": $(swift_port "$sw_base" account), "memcached": $(swift_port "$sw_base" memcached)},
    "dir": "$sw_dir",
    "logs": {"proxy": "$l/proxy.log", "object": "$l/object.log", "container": "$l/container.log", "account": "$l/account.log", "memcached": "$l/memcached.log"},
    "pidFiles": {"proxy": "$p/proxy.pid", "object": "$p/object.pid", "container": "$p/container.pid", "account": "$p/account.pid", "memcached": "$p/memcached.pid"}}
JSON
}

swift_up() {
  local c envs="" sep=""
  # Every Swift process reads this fixed path (hash path prefix/suffix, policy 0); Debian's
  # package ships one. Written only where none exists, never changed.
  if [ ! -s /etc/swift/swift.conf ]; then
    mkdir -p /etc/swift
    printf '[swift-hash]\nswift_hash_path_suffix = %s\nswift_hash_path_prefix = %s\n\n[storage-policy:0]\nname = Policy-0\ndefault = yes\n' \
      "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" > /etc/swift/swift.conf
  fi
  # The two clouds come up side by side (each ~3 s, mostly Python start-up).
  local pids=() rc=0 p
  for c in $SWIFT_CLOUDS; do swift_cloud_up "$c" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  [ "$rc" = 0 ] || { echo "services: swift did not come up (logs in $STATE/swift/<cloud>/log)" >&2; return 1; }
  for c in $SWIFT_CLOUDS; do envs+="$sep$(swift_cloud_env "$c")"; sep=", "; done
  write_env swift "{$envs}"
}

swift_down() {
  local c srv sw_dir sw_base sw_region sw_devices sw_regions
  for c in $SWIFT_CLOUDS; do
    swift_vars "$c"
    for srv in proxy object container account memcached; do
      stop_pidfile "$sw_dir/run/$srv.pid" "$(swift_word "$srv")" "swift $srv ($c)"
    done
  done
}

swift_status() {
  local c srv rc=0 up="" bad sw_dir sw_base sw_region sw_devices sw_regions
  for c in $SWIFT_CLOUDS; do
    swift_vars "$c"; bad=""
    for srv in memcached $SWIFT_SERVERS; do
      if ! alive "$sw_dir/run/$srv.pid" "$(swift_word "$srv")"; then bad+=" $srv (no live pid)"
      elif [ "$srv" != memcached ] && ! swift_healthy "$(swift_port "$sw_base" "$srv")"; then bad+=" $srv (healthcheck fails)"; fi
    done
    if [ -z "$bad" ]; then up+="${up:+; }$c s3 http://127.0.0.1:$(swift_port "$sw_base" proxy) ($sw_region)"
    else say_status swift down "$c:$bad" || true; rc=1; fi
  done
  [ "$rc" = 0 ] && say_status swift up "$up"
  return $rc
}
