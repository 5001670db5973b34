-- mod_intercloud_s2s_peers: a Root federates over s2s with the other Roots only (Prosody 0.12, global).
-- Loaded by scripts/services.d/20-prosody.sh (copied to $STATE/<root>/modules).
--
-- Every Root's s2s is authenticated by certificate (s2s_secure_auth, XEP-0178 SASL EXTERNAL; no
-- dialback). That alone would let any certificate under the Intercloud Root that names a domain
-- open s2s as that domain — and gateway certificates name one too (DNS <cloud>.intercloud.test,
-- EKU serverAuth+clientAuth): a certified cloud could then speak as a server of its own for
-- `anyone@cloud-x.intercloud.test`. So a Root takes s2s, in or out, only with the hosts listed here
-- (the other Roots' domains and their components); any other remote host is closed with
-- policy-violation before it is authenticated, whatever its certificate.
--
-- Options (global section):
--   intercloud_s2s_peers   the remote hosts this Root federates with (a list; empty: none)

module:set_global();

local peers = module:get_option_set("intercloud_s2s_peers", {});

-- Runs before mod_s2s's own certificate policy (priority -1): an unlisted host is refused even
-- with a valid certificate naming it.
module:hook("s2s-check-certificate", function (event)
	local host, session = event.host, event.session;
	if host and peers:contains(host) then return; end
	session.log("warn", "refused s2s %s %s: not an Intercloud Root peer (intercloud_s2s_peers)",
		session.direction == "outgoing" and "to" or "from", tostring(host));
	session:close({ condition = "policy-violation", text = "this Root federates with the Intercloud Roots only" });
	return false;
end, 10);
