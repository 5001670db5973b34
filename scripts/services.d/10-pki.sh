# pki: the Intercloud Root and every certificate the servers and the gateways use, made with the
# project's own CLI (`intercloud ca …`, protocols/trust), so the tests exercise what a real
# deployment issues. Files live in $STATE/pki (CLI layout: NAME.pem + NAME.key):
#   root.pem/.key            the Intercloud Root (ECDSA P-256)
#   cloud-{a,b,c}.pem/.key   gateway identities: CN=<cloud>, SAN URI intercloud://<cloud>,
#                            id-on-xmppAddr <cloud>@intercloud.test, DNS <cloud>.intercloud.test
#   prosody.pem/.key         server cert: intercloud.test, pubsub./scram.intercloud.test, localhost,
#                            127.0.0.1 (key group-readable by the prosody user)
#   prosody2.pem/.key        server cert of the second Root's Prosody: root2.test, pubsub.root2.test,
#                            localhost, 127.0.0.1. Both server certificates carry serverAuth and
#                            clientAuth: each Root presents its own to the other in s2s (XEP-0178).
#   rabbitmq.pem/.key        cloud-a's broker: broker.cloud-a.intercloud.test (its identity, the CN),
#                            localhost, 127.0.0.1 (the names clients of the legacy `rabbitmq` entry use)
#   broker-cloud-b.pem/.key  cloud-b's broker: broker.cloud-b.intercloud.test and
#                            broker.cloud-b.root2.test (cloud-b sits on Root 2 in the local federation)
#   A broker's identity is the DNS name `broker.<cloud>.<domain>`, <domain> the cloud's Root's: a
#   name under the cloud's own `<cloud>.<domain>`, which the Root issues to that cloud's operator
#   only (see protocols/amqp/README.md, "Whose broker").
#   crl.pem                  the root's CRL (empty unless someone revoked in this directory)
# A certificate is reissued when it is missing, no longer chains to root.pem, or expires within a day.
#
# services.json: pki: { dir, root, rootKey, crl, domain, clouds: {<id>: {cert,key,jid,uri,dns}},
#                       servers: {prosody: {cert,key}, prosody2: {cert,key}, rabbitmq: {cert,key},
#                                 brokers: {<cloud>: {cert,key,identity}}} }
# Gateways of the second Root (<id>@root2.test) get their certificates like any other, from this
# same Root CA (`intercloud ca issue --xmpp <id>@root2.test`); the tests issue theirs on the fly.

pki_packages="openssl"
PKI_CLOUDS="cloud-a cloud-b cloud-c"
XMPP_DOMAIN=intercloud.test
# The second Root's XMPP domain (scripts/services.d/20-prosody.sh runs both Roots).
XMPP_DOMAIN2=root2.test

# pki_fresh NAME — true when NAME.pem exists, chains to root.pem and is valid for another day.
pki_fresh() {
  local d=$STATE/pki
  [ -s "$d/$1.pem" ] && [ -s "$d/$1.key" ] \
    && openssl verify -CAfile "$d/root.pem" "$d/$1.pem" >/dev/null 2>&1 \
    && openssl x509 -in "$d/$1.pem" -noout -checkend 86400 >/dev/null 2>&1
}

# pki_has_dns NAME DNS — true when NAME.pem carries the DNS SAN DNS.
pki_has_dns() {
  openssl x509 -in "$STATE/pki/$1.pem" -noout -ext subjectAltName 2>/dev/null | tr ',' '\n' | grep -qx "[[:space:]]*DNS:$2"
}

pki_up() {
  local d=$STATE/pki s c changed=0; s=$(now)
  mkdir -p "$d"; chmod 755 "$STATE" "$d"
  if [ ! -s "$d/root.pem" ] || ! openssl x509 -in "$d/root.pem" -noout -checkend 86400 >/dev/null 2>&1; then
    intercloud ca init --dir "$d" >/dev/null; changed=1
  fi
  for c in $PKI_CLOUDS; do
    pki_fresh "$c" && continue
    intercloud ca issue --dir "$d" --cloud "$c" --xmpp "$c@$XMPP_DOMAIN" --dns "$c.$XMPP_DOMAIN" --out "$d/$c" >/dev/null
    changed=1
  done
  if ! pki_fresh prosody; then
    intercloud ca issue --dir "$d" --server --dns "$XMPP_DOMAIN" --dns "pubsub.$XMPP_DOMAIN" \
      --dns "scram.$XMPP_DOMAIN" --dns localhost --ip 127.0.0.1 --out "$d/prosody" >/dev/null
    changed=1
  fi
  if ! pki_fresh prosody2; then
    intercloud ca issue --dir "$d" --server --dns "$XMPP_DOMAIN2" --dns "pubsub.$XMPP_DOMAIN2" \
      --dns localhost --ip 127.0.0.1 --out "$d/prosody2" >/dev/null
    changed=1
  fi
  if ! pki_fresh rabbitmq || ! pki_has_dns rabbitmq "broker.cloud-a.$XMPP_DOMAIN"; then
    intercloud ca issue --dir "$d" --server --dns "broker.cloud-a.$XMPP_DOMAIN" --dns localhost --ip 127.0.0.1 --out "$d/rabbitmq" >/dev/null
    changed=1
  fi
  if ! pki_fresh broker-cloud-b || ! pki_has_dns broker-cloud-b "broker.cloud-b.$XMPP_DOMAIN2"; then
    intercloud ca issue --dir "$d" --server --dns "broker.cloud-b.$XMPP_DOMAIN" --dns "broker.cloud-b.$XMPP_DOMAIN2" --out "$d/broker-cloud-b" >/dev/null
    changed=1
  fi
  # A CRL older than a day (or from an older root) is remade; `ca revoke` users remake it themselves.
  if [ ! -s "$d/crl.pem" ] || [ "$changed" = 1 ] || [ -n "$(find "$d/crl.pem" -mmin +1440)" ]; then
    intercloud ca crl --dir "$d" --out "$d/crl.pem" >/dev/null
  fi
  chmod 600 "$d"/*.key
  # Prosody drops to its own user before it reads its key.
  getent group prosody >/dev/null && { chgrp prosody "$d/prosody.key" "$d/prosody2.key"; chmod 640 "$d/prosody.key" "$d/prosody2.key"; }
  [ "$changed" = 1 ] && took pki "$s"
  local clouds="" sep=""
  for c in $PKI_CLOUDS; do
    clouds+="$sep\"$c\": {\"cert\": \"$d/$c.pem\", \"key\": \"$d/$c.key\", \"jid\": \"$c@$XMPP_DOMAIN\", \"uri\": \"intercloud://$c\", \"dns\": \"$c.$XMPP_DOMAIN\"}"
    sep=", "
  done
  write_env pki "{\"dir\": \"$d\", \"root\": \"$d/root.pem\", \"rootKey\": \"$d/root.key\", \"crl\": \"$d/crl.pem\",
  \"domain\": \"$XMPP_DOMAIN\", \"clouds\": {$clouds},
  \"servers\": {\"prosody\": {\"cert\": \"$d/prosody.pem\", \"key\": \"$d/prosody.key\"},
              \"prosody2\": {\"cert\": \"$d/prosody2.pem\", \"key\": \"$d/prosody2.key\"},
              \"rabbitmq\": {\"cert\": \"$d/rabbitmq.pem\", \"key\": \"$d/rabbitmq.key\"},
              \"brokers\": {\"cloud-a\": {\"cert\": \"$d/rabbitmq.pem\", \"key\": \"$d/rabbitmq.key\", \"identity\": \"broker.cloud-a.$XMPP_DOMAIN\"},
                          \"cloud-b\": {\"cert\": \"$d/broker-cloud-b.pem\", \"key\": \"$d/broker-cloud-b.key\", \"identity\": \"broker.cloud-b.$XMPP_DOMAIN\"}}}}"
}

# Certificates are files, not processes: `down` keeps them so the next `up` reuses them.
pki_down() { :; }

pki_status() {
  local d=$STATE/pki c
  for c in root $PKI_CLOUDS prosody prosody2 rabbitmq broker-cloud-b; do
    if [ "$c" = root ]; then [ -s "$d/root.pem" ] || { say_status pki down "no root in $d"; return 1; }
    elif ! pki_fresh "$c"; then say_status pki down "$c.pem missing, not chaining to the root, or expiring"; return 1; fi
  done
  say_status pki up "$d (root $(openssl x509 -in "$d/root.pem" -noout -enddate | cut -d= -f2))"
}
