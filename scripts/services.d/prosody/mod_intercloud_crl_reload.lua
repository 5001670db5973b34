-- mod_intercloud_crl_reload: makes a re-issued CRL live in Prosody 0.12 (global module).
-- Loaded by scripts/services.d/20-prosody.sh (copied to $STATE/prosody/modules).
--
-- Client certificates are checked against the Intercloud Root's CRL (LuaSec verifyext
-- "crl_check", CRLs from the TLS `capath` directory). OpenSSL reads that CRL when a TLS context
-- is made and keeps it, so a CRL the Root's operator re-issues (`intercloud ca crl`, which
-- replaces the file) would only count after a reload. This module looks at the CRL file every
-- few seconds and, when it changed, reloads the configuration: mod_tls then remakes its TLS
-- contexts (as on SIGHUP); sessions stay up.
--
-- Options (global section):
--   intercloud_crl_file            the CRL file to watch (required)
--   intercloud_crl_check_interval  seconds between looks (default 5)

module:set_global();

local lfs = require "lfs";

local file = module:get_option_string("intercloud_crl_file");
local interval = module:get_option_number("intercloud_crl_check_interval", 5);

local function signature()
	local a = lfs.attributes(file); -- follows links, like OpenSSL does
	if not a then return nil; end
	return ("%s:%s:%s"):format(tostring(a.ino), tostring(a.size), tostring(a.modification));
end

if not file then
	module:log("error", "intercloud_crl_file is not set: a re-issued crl needs a reload to count");
	return;
end

local last = signature();

module:add_timer(interval, function ()
	local now = signature();
	if now and now ~= last then
		last = now;
		module:log("info", "crl %s changed: reloading the tls contexts", file);
		prosody.reload_config();
	end
	return interval;
end);
