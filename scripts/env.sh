# Sourced by the other scripts: where things are, and how to install what is missing.
# Not meant to be run on its own.

FJORD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/fjord-target}
export FJORD_BIN=${FJORD_BIN:-$CARGO_TARGET_DIR/release}

# Debian packages the build and the tests need: clang/libclang for RocksDB, protoc for
# prost, Apache ZooKeeper 3.8 (zkCli.sh and the anchor), kcat and librdkafka (old-client
# compatibility), netcat for four-letter words; prometheus (promtool, and a real server
# for the metrics tests), dpkg-dev and lintian build and check the .deb (scripts/package.sh);
# chromium + chromium-driver: the console's browser test (selenium drives the system browser);
# postgresql and mariadb-server are the real databases of the JDBC connector tests.
APT_PACKAGES="clang libclang-dev protobuf-compiler pkg-config zookeeper kcat librdkafka-dev netcat-openbsd python3-pip prometheus dpkg-dev lintian chromium chromium-driver postgresql mariadb-server"

fjord_install_apt() {
  local missing=()
  for p in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
  fi
}

fjord_install_pip() {
  python3 -m pip install -q --disable-pip-version-check -r "$FJORD_ROOT/tests/python/requirements.txt" 2>&1 \
    | grep -v "Running pip as the 'root' user" || true
}

fjord_build() {
  (cd "$FJORD_ROOT" && cargo build --release --workspace --bins)
}
