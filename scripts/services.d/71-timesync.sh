# timesync: real time-sync daemons on loopback that `intercloud time` reads, none of which
# may touch the shared clock:
#   - chronyd "root" (-x): an NTP server on 127.0.0.1:11123 serving its local clock (stratum 8);
#   - chronyd "host" (-x): a client of it, command port 127.0.0.1:11323 for `chronyc -c tracking`;
#   - ptp4l on lo with software timestamping and free_running 1 (never steers the clock),
#     management socket $STATE/time/ptp4l.sock for `pmc -u -s … 'GET TIME_STATUS_NP'`.
#
# services.json: timesync: { chrony: {host, port}, ptp: {socket}, pidFiles: [..], logs: [..] }

timesync_packages="chrony linuxptp"
CHRONY_NTP_PORT=11123
CHRONY_CMD_PORT=11323

timesync_up() {
  local dir=$STATE/time s restart=0; s=$(now)
  mkdir -p "$dir"
  update_file "$dir/chrony-root.conf" <<CONF && restart=1
# Written by scripts/services.d/71-timesync.sh: the Root's time source.
port $CHRONY_NTP_PORT
bindaddress 127.0.0.1
allow 127.0.0.1
local stratum 8
cmdport 0
pidfile $dir/chrony-root.pid
CONF
  update_file "$dir/chrony-host.conf" <<CONF && restart=1
# Written by scripts/services.d/71-timesync.sh: this host's chronyd, synced to the Root.
server 127.0.0.1 port $CHRONY_NTP_PORT iburst minpoll 0 maxpoll 4
port 0
cmdport $CHRONY_CMD_PORT
bindcmdaddress 127.0.0.1
cmdallow 127.0.0.1
pidfile $dir/chrony-host.pid
CONF
  if [ "$restart" = 1 ]; then timesync_down; fi
  if ! alive "$dir/chrony-root.pid" chronyd; then
    chronyd -x -u root -f "$dir/chrony-root.conf" -l "$dir/chrony-root.log"
  fi
  if ! alive "$dir/chrony-host.pid" chronyd; then
    chronyd -x -u root -f "$dir/chrony-host.conf" -l "$dir/chrony-host.log"
  fi
  if ! alive "$dir/ptp4l.pid" ptp4l; then
    rm -f "$dir/ptp4l.sock"
    nohup ptp4l -i lo -S -m -q --free_running 1 --uds_address "$dir/ptp4l.sock" >>"$dir/ptp4l.log" 2>&1 &
    echo $! > "$dir/ptp4l.pid"
  fi
  # chronyd "host" needs a few polls before it reports a reference.
  for _ in $(seq 100); do
    chronyc -h 127.0.0.1 -p "$CHRONY_CMD_PORT" -c tracking 2>/dev/null | grep -q '^7F000001,' && [ -S "$dir/ptp4l.sock" ] && break
    sleep 0.2
  done
  took timesync "$s"
  write_env timesync "{\"chrony\": {\"host\": \"127.0.0.1\", \"port\": $CHRONY_CMD_PORT, \"ntpPort\": $CHRONY_NTP_PORT},
  \"ptp\": {\"socket\": \"$dir/ptp4l.sock\"},
  \"pidFiles\": [\"$dir/chrony-root.pid\", \"$dir/chrony-host.pid\", \"$dir/ptp4l.pid\"],
  \"logs\": [\"$dir/chrony-root.log\", \"$dir/chrony-host.log\", \"$dir/ptp4l.log\"]}"
}

timesync_down() {
  stop_pidfile "$STATE/time/ptp4l.pid" ptp4l
  stop_pidfile "$STATE/time/chrony-host.pid" chronyd "chronyd (host)"
  stop_pidfile "$STATE/time/chrony-root.pid" chronyd "chronyd (root)"
}

timesync_status() {
  local d=$STATE/time
  if alive "$d/chrony-root.pid" chronyd && alive "$d/chrony-host.pid" chronyd && alive "$d/ptp4l.pid" ptp4l; then
    say_status timesync up "chronyd 127.0.0.1:$CHRONY_NTP_PORT (cmd $CHRONY_CMD_PORT), ptp4l on lo ($d/ptp4l.sock)"
  else say_status timesync down "chronyd or ptp4l not running (pid files in $d)"; fi
}
