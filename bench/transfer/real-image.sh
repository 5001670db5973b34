#!/bin/sh
# Builds the real-system benchmark image of bench/transfer (case (r), issue 16): a Debian 12
# (bookworm) root made by mmdebstrap (debootstrap's default package set, "important", plus a
# kernel, systemd and sshd, as a cloud VM image has them) in an ext4 filesystem that fills a
# 2 GiB raw disk. `mkfs.ext4 -d` fills the filesystem from the root directory without mounting
# anything; the disk's free space stays holes.
#
#   bench/transfer/real-image.sh /var/tmp/intercloud-bench-transfer/r-debian12.raw [mirror]
#
# Needs root (mmdebstrap's root mode), mmdebstrap (`apt-get install mmdebstrap`), e2fsprogs
# >= 1.43 (mkfs.ext4 -d) and the Debian mirror (default http://deb.debian.org/debian); about
# 6 minutes and 1.2 GB of temporary space beside the image.
# Does nothing when the image already exists: the bench builds it once and reuses it.
set -eu
out=${1:?usage: real-image.sh OUT.raw [MIRROR]}
mirror=${2:-http://deb.debian.org/debian}
[ -s "$out" ] && exit 0

root=$(mktemp -d "$out.root.XXXXXX")
trap 'rm -rf "$root" "$out.tmp"' EXIT INT TERM
SOURCE_DATE_EPOCH=1735689600 mmdebstrap --quiet --variant=important \
  --include=linux-image-amd64,systemd-sysv,openssh-server,ca-certificates,cloud-guest-utils \
  bookworm "$root" "$mirror"

rm -f "$out.tmp"
truncate -s 2G "$out.tmp"
mkfs.ext4 -q -F -L debian12-root -d "$root" "$out.tmp"
mv "$out.tmp" "$out"
