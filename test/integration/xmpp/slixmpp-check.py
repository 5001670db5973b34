"""Independent check of the control plane with slixmpp (Debian python3-slixmpp).

Logs in to the same Prosody (SCRAM, TLS verified against the Intercloud Root), asks a
gateway's disco#info, and reads that gateway's catalog entry from the PubSub node.
Prints one JSON document on stdout.

usage: slixmpp-check.py HOST PORT JID PASSWORD_FILE CA_FILE GATEWAY_FULL_JID PUBSUB_JID NODE ITEM_ID
(the password is read from a file: a command line is visible to every local user)
"""
import asyncio
import json
import sys
import xml.etree.ElementTree as ET

from slixmpp import ClientXMPP

host, port, jid, password_file, ca, gateway, pubsub, node, item_id = sys.argv[1:10]
with open(password_file, encoding='utf-8') as f:
    password = f.read().strip()
CATALOG = '{urn:intercloud:catalog:0}'


class Check(ClientXMPP):
    def __init__(self):
        super().__init__(jid, password)
        self.ca_certs = ca
        self.register_plugin('xep_0030')
        self.register_plugin('xep_0060')
        self.result = {}
        self.add_event_handler('session_start', self.start)
        self.add_event_handler('failed_auth', lambda _e: self.finish({'error': 'auth'}))

    def finish(self, result):
        self.result = result
        self.disconnect()

    async def start(self, _event):
        try:
            info = await self['xep_0030'].get_info(jid=gateway, timeout=10)
            q = info['disco_info']
            items = await self['xep_0060'].get_item(pubsub, node, item_id, timeout=10)
            entry = None
            for item in items['pubsub']['items']:
                payload = item.xml.find(f'{CATALOG}entry')
                if payload is not None:
                    entry = {
                        'cloud': payload.get('cloud'),
                        'jid': payload.get('jid'),
                        'regions': [r.text for r in payload.findall(f'{CATALOG}region')],
                        'formats': [f.text for f in payload.findall(f'{CATALOG}format')],
                        'vcpus': int(payload.find(f'{CATALOG}capacity').get('vcpus')),
                        'certificate': payload.find(f'{CATALOG}certificate').get('sha256'),
                        'signed': payload.find('{urn:intercloud:signature:0}signature') is not None,
                    }
            self.finish({
                'identities': [[c, t, name] for (c, t, _lang, name) in q['identities']],
                'features': sorted(q['features']),
                'entry': entry,
            })
        except Exception as err:  # report, do not hang: the test asserts on the output
            self.finish({'error': f'{type(err).__name__}: {err}'})


xmpp = Check()
xmpp.connect(address=(host, int(port)))
asyncio.get_event_loop().run_until_complete(xmpp.disconnected)
print(json.dumps(xmpp.result))
