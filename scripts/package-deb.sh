#!/usr/bin/env bash
# Builds the Debian package of vxland with Debian's own tools (dpkg-shlibdeps,
# dpkg-deb) from the npm tarball, so that both install routes ship the same
# files:
#   npm run package:deb [-- --tarball vxland-X.tgz] [-- --out DIR]
# Without --tarball it runs `npm pack` first (which needs the addon built:
# npm run build). Writes DIR/vxland_<version>_<arch>.deb (DIR: default the
# checkout) and prints its path.
#
# The package installs:
#   /usr/lib/vxland/                 the npm package: dist/, bin/, package.json,
#                                    the prebuilt addon, the runtime node_modules
#                                    (exactly as package-lock.json has them)
#   /usr/bin/vxland                  -> ../lib/vxland/bin/vxland (the unit's ExecStart)
#   /lib/systemd/system/vxland.service
#   /usr/share/man/man8/vxland.8.gz
#   /usr/share/bash-completion/completions/vxland
#   /usr/share/doc/vxland/           copyright, README.md.gz, changelog.gz
# It starts nothing: the unit needs /etc/vxland/vxland.json first. Its
# maintainer scripts call systemctl only when systemd runs the machine
# (/run/systemd/system exists); purge removes /var/lib/vxland.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tarball=
out=$root
while [ $# -gt 0 ]; do
  case "$1" in
    --tarball) tarball=$(realpath "$2"); shift 2 ;;
    --out) out=$(realpath "$2"); shift 2 ;;
    *) echo "usage: $0 [--tarball FILE] [--out DIR]" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d "${TMPDIR:-/tmp}/vxland-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ -z "$tarball" ]; then
  (cd "$root" && npm pack --pack-destination "$work" >&2)
  tarball=$(echo "$work"/vxland-*.tgz)
fi

version=$(tar -xOzf "$tarball" package/package.json | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0, "utf8")).version)')
arch=$(dpkg --print-architecture)
stage=$work/stage
lib=$stage/usr/lib/vxland
doc=$stage/usr/share/doc/vxland

mkdir -p "$lib"
tar -xzf "$tarball" -C "$lib" --strip-components=1 --no-same-owner
# The runtime dependencies at the versions the checkout is tested with; no
# install scripts: the addon is the prebuilt one, and no dependency needs one.
cp "$root/package-lock.json" "$lib/"
(cd "$lib" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error >&2)
rm -f "$lib/package-lock.json"
ls "$lib"/prebuilds/*/*.node >/dev/null || { echo "package-deb: the tarball has no prebuilt addon" >&2; exit 1; }

# What goes elsewhere on the system, and the sources of the local-build
# fallback (the .deb is built for one architecture: its prebuilt addon).
install -D -m 0644 "$lib/systemd/vxland.service" "$stage/lib/systemd/system/vxland.service"
install -D -m 0644 "$lib/systemd/vxland.sysusers.conf" "$stage/usr/lib/sysusers.d/vxland.conf"
install -d "$stage/usr/share/man/man8"
gzip -9n <"$lib/man/vxland.8" >"$stage/usr/share/man/man8/vxland.8.gz"
install -D -m 0644 "$lib/completion/vxland.bash" "$stage/usr/share/bash-completion/completions/vxland"
install -d "$doc"
gzip -9n <"$lib/README.md" >"$doc/README.md.gz"
rm -rf "$lib/systemd" "$lib/man" "$lib/completion" "$lib/native" "$lib/binding.gyp" "$lib/README.md" "$lib/LICENSE" \
  "$lib/node_modules/node-addon-api"
find "$lib/node_modules" \( -name .npmignore -o -name .gitattributes \) -type f -delete
# A shared object as Debian ships one: stripped, not executable.
for addon in "$lib"/prebuilds/*/*.node; do
  strip --strip-unneeded --remove-section=.comment --remove-section=.note "$addon"
  chmod 0644 "$addon"
done
install -d "$stage/usr/bin"
ln -s ../lib/vxland/bin/vxland "$stage/usr/bin/vxland"

{
  echo 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/'
  echo 'Upstream-Name: vxland'
  echo
  echo 'Files: *'
  echo 'Copyright: 2026 the vxland authors'
  echo 'License: MIT'
  sed -e '1,/^Copyright/d' -e 's/^$/./' -e 's/^/ /' "$root/LICENSE"
  echo
  echo 'Files: usr/lib/vxland/node_modules/*'
  echo 'Copyright: the authors of each module (see its package.json)'
  echo 'License: see the LICENSE file or package.json of each module'
} >"$doc/copyright"
# A native package (no Debian revision): changelog.gz, not changelog.Debian.gz.
printf 'vxland (%s) unstable; urgency=medium\n\n  * Built from the npm package vxland-%s.\n\n -- the vxland authors <vxland@localhost>  %s\n' \
  "$version" "$version" "$(date -R -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}")" | gzip -9n >"$doc/changelog.gz"

# dpkg-deb takes modes as they are: directories and files world-readable,
# executables stay executable.
chmod -R u+rwX,go=rX "$stage"

# The addon's shared-library dependencies; its napi_* symbols are Node's.
mkdir -p "$work/shlibs/debian"
printf 'Source: vxland\n\nPackage: vxland\nArchitecture: any\n' >"$work/shlibs/debian/control"
shlibs=$(cd "$work/shlibs" && dpkg-shlibdeps -O "${lib}"/prebuilds/*/*.node 2>/dev/null | sed -n 's/^shlibs:Depends=//p')

install -d "$stage/DEBIAN"
cat >"$stage/DEBIAN/control" <<EOF
Package: vxland
Version: $version
Architecture: $arch
Maintainer: the vxland authors <vxland@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: nodejs (>= 20)${shlibs:+, $shlibs}
Section: net
Priority: optional
Description: user-space VXLAN tunnel endpoint (VTEP)
 vxland connects a host to VXLAN overlay networks (RFC 7348) from user
 space: one daemon per host serves any number of networks, each a VNI
 with its own TAP device, flood list and forwarding database, and
 interoperates with the Linux kernel's vxlan device. Runs from the
 systemd unit vxland.service once /etc/vxland/vxland.json exists.
EOF

cat >"$stage/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
# The system user and group the unit runs as (User=vxland): from the
# sysusers file where systemd-sysusers exists, else with adduser/useradd.
# Kept on purge, as Debian keeps system users (files may still be theirs).
if [ "$1" = configure ] && ! getent passwd vxland >/dev/null; then
  if command -v systemd-sysusers >/dev/null; then
    systemd-sysusers /usr/lib/sysusers.d/vxland.conf
  else
    getent group vxland >/dev/null || groupadd --system vxland
    useradd --system --gid vxland --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vxland
  fi
fi
# Nothing starts on a first install (the unit needs /etc/vxland/vxland.json);
# an upgrade restarts a running daemon on the new files.
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
  if [ -n "$2" ]; then systemctl try-restart vxland.service || true; fi
fi
EOF
cat >"$stage/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl stop vxland.service || true
fi
EOF
cat >"$stage/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
  # What the unit made (StateDirectory=, `systemctl enable`), and the
  # configuration directory when nothing of the admin's is left in it.
  rm -rf /var/lib/vxland
  rm -f /etc/systemd/system/multi-user.target.wants/vxland.service
  if [ -d /etc/vxland ]; then rmdir --ignore-fail-on-non-empty /etc/vxland; fi
fi
if { [ "$1" = remove ] || [ "$1" = purge ]; } && [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
fi
EOF
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/md5sums" "$stage/DEBIAN/control"

mkdir -p "$out"
deb=$out/vxland_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >&2
echo "$deb"
