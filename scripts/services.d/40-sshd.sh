# sshd: OpenSSH on 127.0.0.1:22322, public-key only, so adapters can drive `virsh` over SSH (ssh2 or
# libvirt's qemu+ssh://). Its own host key and one client key for the agent live in $STATE/ssh; the
# host key's SHA256 fingerprint and a known_hosts line are recorded so clients pin it.
#
# services.json: sshd: { host, port, user, privateKey, publicKey, hostPublicKey,
#   hostKeyFingerprint, knownHostsLine, knownHostsFile, pidFile, log }

sshd_packages="openssh-server openssh-client rsync"
SSHD_PORT=22322

sshd_up() {
  local dir=$STATE/ssh s; s=$(now)
  mkdir -p "$dir"; chmod 700 "$dir"
  [ -s "$dir/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C intercloud-sshd -f "$dir/host_ed25519"
  [ -s "$dir/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C intercloud-agent -f "$dir/client_ed25519"
  update_file "$dir/authorized_keys" 600 < "$dir/client_ed25519.pub" || true
  local restart=0
  update_file "$dir/sshd_config" <<CFG && restart=1
# Written by scripts/services.d/40-sshd.sh.
Port $SSHD_PORT
ListenAddress 127.0.0.1
PidFile $dir/sshd.pid
HostKey $dir/host_ed25519
AuthorizedKeysFile $dir/authorized_keys
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
MaxSessions 64
MaxStartups 64:30:128
Subsystem sftp /usr/lib/openssh/sftp-server
CFG
  if alive "$dir/sshd.pid" sshd; then
    [ "$restart" = 1 ] && { log "sshd configuration changed: restarting"; sshd_down; }
  fi
  if ! alive "$dir/sshd.pid" sshd; then
    [ -d /run/sshd ] || mkdir -m 755 /run/sshd   # privilege separation directory, normally made by init
    rm -f "$dir/sshd.pid"
    /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"   # binds before it detaches
    waitport "$SSHD_PORT"
    took sshd "$s"
  fi
  local hostpub fp line
  hostpub=$(cut -d' ' -f1,2 "$dir/host_ed25519.pub")
  fp=$(ssh-keygen -l -E sha256 -f "$dir/host_ed25519.pub" | awk '{print $2}')
  line="[127.0.0.1]:$SSHD_PORT $hostpub"
  echo "$line" | update_file "$dir/known_hosts" || true
  write_env sshd "{\"host\": \"127.0.0.1\", \"port\": $SSHD_PORT, \"user\": \"root\",
  \"privateKey\": \"$dir/client_ed25519\", \"publicKey\": \"$dir/client_ed25519.pub\",
  \"hostPublicKey\": \"$hostpub\", \"hostKeyFingerprint\": \"$fp\", \"knownHostsLine\": \"$line\",
  \"knownHostsFile\": \"$dir/known_hosts\", \"pidFile\": \"$dir/sshd.pid\", \"log\": \"$dir/sshd.log\"}"
}

sshd_down() { stop_pidfile "$STATE/ssh/sshd.pid" sshd; }

sshd_status() {
  if alive "$STATE/ssh/sshd.pid" sshd; then say_status sshd up "127.0.0.1:$SSHD_PORT (key-only)"
  else say_status sshd down "no live pid in $STATE/ssh/sshd.pid"; fi
}
