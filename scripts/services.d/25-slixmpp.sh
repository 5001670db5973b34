# slixmpp: not a server but the independent XMPP client (Debian python3-slixmpp) that the
# control-plane interop test drives against Prosody (test/integration/xmpp/slixmpp.test.ts).
# Debian's python is used explicitly: a python3 earlier on PATH (pyenv …) does not see it.
#
# services.json: slixmpp: { python }

slixmpp_packages="python3-slixmpp"

slixmpp_up() {
  /usr/bin/python3 -c 'import slixmpp' 2>/dev/null || { log "slixmpp: python3-slixmpp is not importable by /usr/bin/python3"; return 1; }
  write_env slixmpp '{"python": "/usr/bin/python3"}'
}

slixmpp_down() { :; }

slixmpp_status() {
  if /usr/bin/python3 -c 'import slixmpp' 2>/dev/null; then say_status slixmpp up "/usr/bin/python3 (slixmpp $(/usr/bin/python3 -c 'import slixmpp; print(slixmpp.__version__)'))"
  else say_status slixmpp down "python3-slixmpp not installed"; return 1; fi
}
