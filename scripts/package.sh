#!/usr/bin/env bash
# Builds the Debian package fjord_<version>_<arch>.deb: fjord, fjord-coord and
# fjord-broker in /usr/bin, configs in /etc/fjord/ (coord.properties with zoo.cfg keys,
# broker.properties with server.properties keys; conffiles), systemd units
# fjord-coord.service and fjord-broker.service (Type=notify, the broker ordered after
# and requiring the coordinator), data under /var/lib/fjord/ (made by postinst, which
# also creates the `fjord` system user). Logs go to the journal.
#
# Built with dpkg-deb from a staged tree (not cargo-deb): dpkg-deb and dpkg-shlibdeps
# are on every Debian machine already, while `cargo install cargo-deb` compiles a few
# hundred crates on each fresh machine first; the tree below is the whole recipe.
#
#   scripts/package.sh [--no-build] [--out DIR]     (default DIR: dist/)
#   sudo apt install ./dist/fjord_*.deb && sudo systemctl enable --now fjord-coord fjord-broker
#
# Env: FJORD_BIN (the release binaries; default $CARGO_TARGET_DIR/release).
set -euo pipefail
source "$(dirname "$0")/env.sh"

OUT=$FJORD_ROOT/dist
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --out) OUT=$2; shift ;;
    *) echo "usage: $0 [--no-build] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done

BINS="fjord fjord-coord fjord-broker"
if [ "$BUILD" = 1 ]; then
  fjord_build
fi
for b in $BINS; do
  [ -x "$FJORD_BIN/$b" ] || { echo "$FJORD_BIN/$b missing: build first (cargo build --release --workspace --bins)" >&2; exit 1; }
done

VERSION=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$FJORD_ROOT/Cargo.toml")
ARCH=$(dpkg --print-architecture)
PKG=$FJORD_ROOT/packaging/debian
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/fjord-deb.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
ROOT=$STAGE/fjord_${VERSION}_${ARCH}

install -d "$ROOT/DEBIAN" "$ROOT/usr/bin" "$ROOT/etc/fjord" "$ROOT/lib/systemd/system" \
  "$ROOT/usr/share/doc/fjord"

# Binaries, stripped (the release profile keeps line tables for backtraces).
for b in $BINS; do
  install -m 0755 "$FJORD_BIN/$b" "$ROOT/usr/bin/$b"
  strip --strip-unneeded --remove-section=.comment --remove-section=.note "$ROOT/usr/bin/$b"
done

# Configs: the repository's, with the data under /var/lib/fjord.
sed -e 's|^dataDir=.*|dataDir=/var/lib/fjord/coord|' \
    -e 's|^# *dataLogDir=.*|# dataLogDir=/var/lib/fjord/coord-log|' \
    "$FJORD_ROOT/config/coord.properties" > "$ROOT/etc/fjord/coord.properties"
sed -e 's|^log.dirs=.*|log.dirs=/var/lib/fjord/broker-0|' \
    "$FJORD_ROOT/config/broker.properties" > "$ROOT/etc/fjord/broker.properties"
chmod 0644 "$ROOT"/etc/fjord/*
grep -q '^dataDir=/var/lib/fjord/coord$' "$ROOT/etc/fjord/coord.properties"
grep -q '^log.dirs=/var/lib/fjord/broker-0$' "$ROOT/etc/fjord/broker.properties"

install -m 0644 "$PKG/fjord-coord.service" "$PKG/fjord-broker.service" "$ROOT/lib/systemd/system/"
install -m 0644 "$PKG/copyright" "$ROOT/usr/share/doc/fjord/copyright"
install -m 0644 "$FJORD_ROOT/README.md" "$FJORD_ROOT/docs/operations.md" "$ROOT/usr/share/doc/fjord/"
gzip -9n "$ROOT/usr/share/doc/fjord/README.md" "$ROOT/usr/share/doc/fjord/operations.md"
printf 'fjord (%s) unstable; urgency=medium\n\n  * Built by scripts/package.sh.\n\n -- Fjord maintainers <fjord@example.org>  %s\n' \
  "$VERSION" "$(date -R -d @"${SOURCE_DATE_EPOCH:-$(git -C "$FJORD_ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}")" \
  | gzip -9n > "$ROOT/usr/share/doc/fjord/changelog.gz"

install -m 0755 "$PKG/postinst" "$PKG/prerm" "$PKG/postrm" "$ROOT/DEBIAN/"
printf '/etc/fjord/coord.properties\n/etc/fjord/broker.properties\n' > "$ROOT/DEBIAN/conffiles"

# Shared-library dependencies as dpkg-shlibdeps computes them (it wants a debian/control).
mkdir -p "$STAGE/src/debian"
printf 'Source: fjord\n\nPackage: fjord\nArchitecture: any\n' > "$STAGE/src/debian/control"
SHLIBS=$(cd "$STAGE/src" && dpkg-shlibdeps -O $(for b in $BINS; do printf -- '-e%s ' "$ROOT/usr/bin/$b"; done) 2>/dev/null \
  | sed -n 's/^shlibs:Depends=//p')
SIZE=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
cat > "$ROOT/DEBIAN/control" <<EOF
Package: fjord
Version: $VERSION
Architecture: $ARCH
Maintainer: Fjord maintainers <fjord@example.org>
Installed-Size: $SIZE
Depends: ${SHLIBS:+$SHLIBS, }adduser
Section: net
Priority: optional
Homepage: https://example.org/fjord
Description: ZooKeeper- and Kafka-compatible coordinator and broker in Rust
 Fjord rebuilds ZooKeeper and Kafka wire-compatibly: fjord-coord speaks the
 ZooKeeper protocol, fjord-broker the Kafka protocol, and fjord is one command
 line for what the Kafka and ZooKeeper tools do. This package installs the
 three binaries, configs in /etc/fjord and the systemd units fjord-coord and
 fjord-broker (enable them with systemctl enable --now).
EOF

mkdir -p "$OUT"
DEB=$OUT/fjord_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zgzip -z6 --build "$ROOT" "$DEB" >/dev/null
echo "$DEB"
