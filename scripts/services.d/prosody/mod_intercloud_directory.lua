-- mod_intercloud_directory: the Intercloud directory's rules on the PubSub component (Prosody 0.12).
-- Loaded on the pubsub component by scripts/services.d/20-prosody.sh (copied to $STATE/prosody/modules).
--
-- Prosody's mod_pubsub (util/pubsub.lua) keeps no per-item owner: with publish_model = "open"
-- anyone may publish (and so overwrite) any item id, and every "publisher" or admin may retract
-- any item. A certificate under the Intercloud Root proves who a gateway is, not that it may touch
-- another cloud's entry, so on the catalog node this module enforces:
--   * the node exists from the start, created by the server itself (no owner affiliation: only the
--     Root's operator, through `prosodyctl shell` on the Root's host, can configure, purge or
--     delete it; gateways are not admins of the component, so they cannot either);
--   * a publish is accepted only from a JID of the gateway domain, and only for the item whose id
--     is that JID's local part (the cloud id): a cloud publishes its own entry and nobody else's;
--   * a retract is accepted only for that same item (util/pubsub's "retract" capability is not
--     given to anyone: the retract runs with the server's own rights once ownership is checked).
-- Readers still verify each entry's signature and that its signer is the item id (protocols/xmpp
-- session.ts): this module keeps the directory itself from being overwritten or emptied.
--
-- Options (component section):
--   intercloud_catalog_node    the catalog node (default "urn:intercloud:catalog:0")
--   intercloud_gateway_domain  the domain whose accounts are gateways (required)

local jid_split = require "util.jid".split;

local catalog_node = module:get_option_string("intercloud_catalog_node", "urn:intercloud:catalog:0");
local gateway_domain = module:get_option_string("intercloud_gateway_domain");
if not gateway_domain then
	module:log("error", "intercloud_gateway_domain is not set: the catalog node is closed to everyone");
end

local catalog_config = {
	access_model = "open";      -- anyone may read the directory
	publish_model = "open";     -- anyone may ask; ownership is checked below
	persist_items = true;
	max_items = 100000;  -- past this Prosody silently evicts the oldest entry (another cloud's)
	notify_retract = true;
};

-- The cloud id `actor` may act for on the catalog, or nil when it is not a gateway.
local function cloud_of(actor)
	if actor == true then return true; end
	if type(actor) ~= "string" then return nil; end
	local user, host = jid_split(actor);
	if user and host == gateway_domain then return user; end
	return nil;
end

local pubsub = module:depends("pubsub");

local function guard(service)
	if service.intercloud_directory_guarded then return; end
	service.intercloud_directory_guarded = true;
	local publish, retract = service.publish, service.retract;

	function service.publish(self, node, actor, id, item, requested_config)
		if node == catalog_node and actor ~= true then
			local cloud = cloud_of(actor);
			if not cloud or id ~= cloud then
				module:log("warn", "refused: %s publishing item %q on the catalog", tostring(actor), tostring(id));
				return false, "forbidden";
			end
		end
		return publish(self, node, actor, id, item, requested_config);
	end

	function service.retract(self, node, actor, id, notifier)
		if node == catalog_node and actor ~= true then
			local cloud = cloud_of(actor);
			if not cloud or id ~= cloud then
				module:log("warn", "refused: %s retracting item %q from the catalog", tostring(actor), tostring(id));
				return false, "forbidden";
			end
			return retract(self, node, true, id, notifier);
		end
		return retract(self, node, actor, id, notifier);
	end

	local node_obj = service.nodes[catalog_node];
	if not node_obj then
		local ok, err = service:create(catalog_node, true, catalog_config);
		if not ok then
			module:log("error", "cannot create the catalog node %q: %s", catalog_node, tostring(err));
		else
			module:log("info", "created the catalog node %q", catalog_node);
		end
		return;
	end
	-- A node made before this module (by a gateway that was then an admin) keeps that gateway as
	-- its owner: take every affiliation away and put the directory's configuration back.
	local affiliated = {};
	for jid in pairs(node_obj.affiliations) do affiliated[#affiliated + 1] = jid; end
	for _, jid in ipairs(affiliated) do
		service:set_affiliation(catalog_node, true, jid, nil); -- nil, not "none": "none" may not read items
		module:log("info", "removed %s's affiliation with the catalog node", tostring(jid));
	end
	local config = {};
	for k, v in pairs(node_obj.config) do config[k] = v; end
	for k, v in pairs(catalog_config) do config[k] = v; end
	local ok, err = service:set_node_config(catalog_node, true, config);
	if not ok then module:log("error", "cannot configure the catalog node: %s", tostring(err)); end
end

function module.load()
	guard(pubsub.get_service());
end
