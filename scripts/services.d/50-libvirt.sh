# libvirt: two independent hypervisor "clouds", cloud-a and cloud-b, each a libvirtd with the QEMU
# driver under TCG (no KVM here). Each runs in its own network namespace (ic-cloud-a/ic-cloud-b,
# joined by a veth: 10.213.7.1 <-> 10.213.7.2, for libvirt's own migration) and a private mount
# namespace where $STATE/libvirt/<cloud>/{etc,lib,log,cache,run} replace /etc/libvirt,
# /var/lib/libvirt, /var/log/libvirt, /var/cache/libvirt and /run, so the two never share state.
# Each has its own host_uuid and a `default` dir storage pool in $STATE/libvirt/<cloud>/images.
# Their control sockets ($STATE/libvirt/<cloud>/sock/libvirt-sock) are reachable from the root
# namespace, so `virsh -c <uri>` works both locally and as the command run over the sshd service
# (same machine). libvirt's own qemu+ssh:// transport is not offered: with the ssh binary it
# cannot be told which known_hosts to pin, and its libssh transports fail against a `socket=` URI.
# QEMU runs as root without a security driver, cgroups or namespaces (a dev box, not production).
# `down` destroys the domains still running, then stops the daemons and removes the namespaces.
#
# services.json: libvirt: { instances: { <cloud>: { uri, socket, netns, address, hostUuid,
#   pool, poolPath, dir, log, pidFile, migrationPorts: [min, max] } } }

# libxml2-utils: virt-xml-validate (libvirt-clients) runs xmllint but does not depend on it.
# jq, curl: the sample libvirt hook (systemd/libvirt-hooks/qemu) that a test runs.
libvirt_packages="libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libxml2-utils jq curl qemu-system-x86 qemu-utils iproute2"
LIBVIRT_CLOUDS="cloud-a cloud-b"

# libvirt_conf CLOUD — fixed per-cloud facts: index, host uuid, veth address, migration ports.
libvirt_conf() {
  case $1 in
    cloud-a) LV_I=a LV_UUID=1c0a0000-0000-4000-8000-00000000000a LV_ADDR=10.213.7.1 LV_MIG=24100 ;;
    cloud-b) LV_I=b LV_UUID=1c0b0000-0000-4000-8000-00000000000b LV_ADDR=10.213.7.2 LV_MIG=24200 ;;
  esac
  LV_DIR=$STATE/libvirt/$1 LV_NS=ic-$1
  LV_URI="qemu:///system?socket=$LV_DIR/sock/libvirt-sock"
}

libvirt_netns() {
  local c made=$STATE/run/netns
  for c in $LIBVIRT_CLOUDS; do
    libvirt_conf "$c"
    if [ ! -e "/run/netns/$LV_NS" ]; then
      ip netns add "$LV_NS"; echo "$LV_NS" >> "$made"; ip -n "$LV_NS" link set lo up
    fi
  done
  if ! ip -n ic-cloud-a link show ic-veth-a >/dev/null 2>&1; then
    ip link add ic-veth-a netns ic-cloud-a type veth peer name ic-veth-b netns ic-cloud-b
    ip -n ic-cloud-a addr add 10.213.7.1/30 dev ic-veth-a; ip -n ic-cloud-b addr add 10.213.7.2/30 dev ic-veth-b
    ip -n ic-cloud-a link set ic-veth-a up; ip -n ic-cloud-b link set ic-veth-b up
  fi
}

# libvirt_start CLOUD — starts that cloud's libvirtd if it is not running.
libvirt_start() {
  libvirt_conf "$1"
  local d=$LV_DIR s restart=0; s=$(now)
  mkdir -p "$d"/{etc,lib,log,cache,run,sock,images}
  update_file "$d/etc/libvirtd.conf" <<CFG && restart=1
unix_sock_dir = "$d/sock"
auth_unix_ro = "none"
auth_unix_rw = "none"
unix_sock_rw_perms = "0700"
host_uuid = "$LV_UUID"
log_outputs = "3:file:$d/libvirtd.log"
CFG
  update_file "$d/etc/qemu.conf" <<CFG && restart=1
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
stdio_handler = "file"
vnc_listen = "127.0.0.1"
migration_address = "$LV_ADDR"
migration_port_min = $LV_MIG
migration_port_max = $((LV_MIG + 15))
CFG
  if alive "$d/libvirtd.pid" libvirtd; then
    [ "$restart" = 1 ] || return 0
    log "libvirt $1 configuration changed: restarting"; libvirt_stop "$1"
  fi
  # The QEMU driver insists that a `libvirt-qemu` user resolves: give the namespace its own passwd.
  { cat /etc/passwd; getent passwd libvirt-qemu >/dev/null || echo 'libvirt-qemu:x:64055:64055::/nonexistent:/usr/sbin/nologin'; } > "$d/passwd"
  { cat /etc/group; getent group libvirt-qemu >/dev/null || echo 'libvirt-qemu:x:64055:'; } > "$d/group"
  mkdir -p /var/lib/libvirt /var/log/libvirt /var/cache/libvirt   # mount points (the package's own paths)
  rm -f "$d/libvirtd.pid"
  ip netns exec "$LV_NS" unshare --mount --propagation private -- sh -c "
    mount --bind '$d/passwd' /etc/passwd && mount --bind '$d/group' /etc/group &&
    mount --bind '$d/etc' /etc/libvirt && mount --bind '$d/lib' /var/lib/libvirt &&
    mount --bind '$d/log' /var/log/libvirt && mount --bind '$d/cache' /var/cache/libvirt &&
    mount --bind '$d/run' /run && exec /usr/sbin/libvirtd --daemon --pid-file '$d/libvirtd.pid'"
  # The first connection probes QEMU's capabilities (~1 s); do it here, not in the first test.
  local ok=0; for _ in $(seq 100); do virsh -q -c "$LV_URI" version >/dev/null 2>&1 && { ok=1; break; }; sleep 0.1; done
  [ "$ok" = 1 ] || { echo "services: libvirtd $1 does not answer, see $d/libvirtd.log" >&2; return 1; }
  if ! virsh -q -c "$LV_URI" pool-info default >/dev/null 2>&1; then
    virsh -q -c "$LV_URI" pool-define-as default dir --target "$d/images" >/dev/null
    virsh -q -c "$LV_URI" pool-autostart default >/dev/null
  fi
  [ "$(virsh -q -c "$LV_URI" pool-info default | awk '/^State:/{print $2}')" = running ] \
    || virsh -q -c "$LV_URI" pool-start default >/dev/null
  took "libvirt-$1" "$s"
}

# libvirt_stop CLOUD — destroys its running domains, stops libvirtd and leftover QEMU processes.
libvirt_stop() {
  libvirt_conf "$1"
  local d=$LV_DIR dom f
  if alive "$d/libvirtd.pid" libvirtd; then
    for dom in $(virsh -q -c "$LV_URI" list --name 2>/dev/null); do
      virsh -q -c "$LV_URI" destroy "$dom" >/dev/null 2>&1 && log "destroyed domain $dom on $1"
    done
  fi
  for f in "$d"/run/libvirt/qemu/*.pid; do [ -e "$f" ] && stop_pidfile "$f" qemu-system "qemu ($1)"; done
  stop_pidfile "$d/libvirtd.pid" libvirtd "libvirtd-$1"
}

libvirt_up() {
  local c inst="" sep="" pids=() rc=0 p
  libvirt_netns
  # Both start at once: each spends most of its ~8 s cold start probing QEMU.
  for c in $LIBVIRT_CLOUDS; do libvirt_start "$c" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  [ $rc = 0 ] || return 1
  for c in $LIBVIRT_CLOUDS; do
    libvirt_conf "$c"
    inst+="$sep\"$c\": {\"uri\": \"$LV_URI\",
    \"socket\": \"$LV_DIR/sock/libvirt-sock\", \"netns\": \"$LV_NS\", \"address\": \"$LV_ADDR\", \"hostUuid\": \"$LV_UUID\",
    \"pool\": \"default\", \"poolPath\": \"$LV_DIR/images\", \"dir\": \"$LV_DIR\", \"log\": \"$LV_DIR/libvirtd.log\",
    \"pidFile\": \"$LV_DIR/libvirtd.pid\", \"migrationPorts\": [$LV_MIG, $((LV_MIG + 15))]}"
    sep=", "
  done
  write_env libvirt "{\"instances\": {$inst}}"
}

libvirt_down() {
  local c ns made=$STATE/run/netns pids=() p
  for c in $LIBVIRT_CLOUDS; do libvirt_stop "$c" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || true; done
  if [ -f "$made" ]; then
    for ns in $(sort -u "$made"); do ip netns del "$ns" 2>/dev/null && log "deleted netns $ns"; done
    rm -f "$made"
  fi
}

libvirt_status() {
  local c rc=0 line=""
  for c in $LIBVIRT_CLOUDS; do
    libvirt_conf "$c"
    if alive "$LV_DIR/libvirtd.pid" libvirtd; then line+="$c up (netns $LV_NS); "; else line+="$c down; "; rc=1; fi
  done
  if [ $rc = 0 ]; then say_status libvirt up "${line%; }"; else say_status libvirt down "${line%; }"; fi
}
