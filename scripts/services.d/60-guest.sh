# guest: a real Linux guest for the demo and the migration tests — Debian's cloud kernel (the
# package linux-image-cloud-amd64 depends on, fetched with `apt-get download` and unpacked, not
# installed) and a busybox initrd. Its init prints one start line and then a heartbeat every
# second on the serial console (give the domain <serial type='file'>), each carrying the identity
# marker read from the first virtio disk (vda). Make such a disk with scripts/guest-disk ID OUT.
#   INTERCLOUD-GUEST-UP kernel=<release> disk=<id|none>
#   INTERCLOUD-GUEST-HB n=<count> uptime=<seconds> disk=<id|none>
# Boots to its start line in ~4 s under TCG with 128 MiB. Nothing runs: these are files.
#
# services.json: guest: { kernel, initrd, cmdline, kernelRelease, memoryMiB, startMarker,
#   heartbeatMarker, diskMarker, makeDisk, dir }

guest_packages="busybox-static qemu-utils kmod dosfstools mtools syslinux syslinux-common"
GUEST_MODULES="virtio_pci virtio_blk"

guest_up() {
  local dir=$STATE/guest s; s=$(now)
  mkdir -p "$dir"
  local init_sum; init_sum=$(guest_init | sha256sum | cut -c1-16)
  local built; built=$(cat "$dir/init.sum" 2>/dev/null || true)
  # Already built from this init: reuse it without asking apt (a new kernel needs `down`+rm or a new init).
  if [ "${built%%-*}" = "$init_sum" ] && [ -s "$dir/vmlinuz-${built#*-}" ] && [ -s "$dir/initrd-${built#*-}.gz" ]; then
    guest_env "${built#*-}"; return 0
  fi
  local pkg; pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  [ -n "$pkg" ] || { echo "services: cannot resolve linux-image-cloud-amd64 (apt-get update?)" >&2; return 1; }
  local rel=${pkg#linux-image-}
  if [ ! -s "$dir/vmlinuz-$rel" ] || [ ! -s "$dir/initrd-$rel.gz" ] || [ "$(cat "$dir/init.sum" 2>/dev/null)" != "$init_sum-$rel" ]; then
    local work="$dir/build.$$"; rm -rf "$work"; mkdir -p "$work/deb" "$work/root"/{bin,proc,sys,dev,lib/modules}
    ( cd "$work" && apt-get -q -o APT::Sandbox::User=root download "$pkg" >/dev/null )
    dpkg-deb -x "$work"/linux-image-*.deb "$work/deb"
    cp "$work/deb/boot/vmlinuz-$rel" "$dir/vmlinuz-$rel.tmp"
    # virtio_pci and virtio_blk are modules in the cloud kernel: ship them and their dependencies,
    # in load order, as computed by modinfo (no depmod in the guest).
    local order=() seen=" "
    guest_dep() {
      local m=$1 f d
      case $seen in *" $m "*) return ;; esac; seen+="$m "
      f=$(find "$work/deb/lib/modules/$rel" -name "$m.ko*" | head -1)
      [ -n "$f" ] || return 0   # built into the kernel
      for d in $(modinfo -F depends "$f" | tr ',' ' '); do guest_dep "$d"; done
      cp "$f" "$work/root/lib/modules/"; order+=("$(basename "$f")")
    }
    local m; for m in $GUEST_MODULES; do guest_dep "$m"; done
    printf '%s\n' "${order[@]}" > "$work/root/lib/modules/order"
    cp /bin/busybox "$work/root/bin/busybox"
    guest_init > "$work/root/init"; chmod 755 "$work/root/init"
    ( cd "$work/root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 ) > "$dir/initrd-$rel.gz.tmp"
    mv "$dir/vmlinuz-$rel.tmp" "$dir/vmlinuz-$rel"; mv "$dir/initrd-$rel.gz.tmp" "$dir/initrd-$rel.gz"
    echo "$init_sum-$rel" > "$dir/init.sum"
    rm -rf "$work"
    took guest "$s"
  fi
  guest_env "$rel"
}

guest_env() {
  local dir=$STATE/guest rel=$1
  write_env guest "{\"kernel\": \"$dir/vmlinuz-$rel\", \"initrd\": \"$dir/initrd-$rel.gz\",
  \"cmdline\": \"console=ttyS0 quiet\", \"kernelRelease\": \"$rel\", \"memoryMiB\": 128,
  \"startMarker\": \"INTERCLOUD-GUEST-UP\", \"heartbeatMarker\": \"INTERCLOUD-GUEST-HB\",
  \"diskMarker\": \"INTERCLOUD-DISK-ID\", \"makeDisk\": \"$INTERCLOUD_REPO/scripts/guest-disk\", \"dir\": \"$dir\"}"
}

# guest_init — the initrd's /init (busybox sh).
guest_init() {
  cat <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
while read -r m; do insmod "/lib/modules/$m" 2>/dev/null; done < /lib/modules/order
i=0; while [ ! -b /dev/vda ] && [ $i -lt 20 ]; do sleep 0.1; i=$((i + 1)); done
id=none
if [ -b /dev/vda ]; then
  line=$(head -c 512 /dev/vda | head -n 1)
  case $line in "INTERCLOUD-DISK-ID "*) id=${line#INTERCLOUD-DISK-ID } ;; esac
fi
# A self-booting disk (scripts/guest-boot-disk) names itself on the command line it boots with.
for a in $(cat /proc/cmdline); do case $a in intercloud.disk=*) [ "$id" = none ] && id=${a#intercloud.disk=} ;; esac; done
echo "INTERCLOUD-GUEST-UP kernel=$(uname -r) disk=$id"
n=0
while :; do
  echo "INTERCLOUD-GUEST-HB n=$n uptime=$(cut -d' ' -f1 /proc/uptime) disk=$id"
  n=$((n + 1)); sleep 1
done
INIT
}

guest_down() { :; }

guest_status() {
  local k; k=$(ls "$STATE"/guest/vmlinuz-* 2>/dev/null | head -1)
  if [ -n "$k" ]; then say_status guest up "kernel $k"; else say_status guest down "no kernel in $STATE/guest"; fi
}
