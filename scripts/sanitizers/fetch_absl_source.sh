#!/usr/bin/env bash
# Downloads and unpacks the source of Debian's installed abseil (apt-get source, with a deb-src
# entry of its own so the system's apt configuration is untouched) into DIR, and prints the
# source tree's path. The TSan build compiles its synchronization sources (see
# cmake/lorad_sanitizers.cmake). Idempotent: an unpacked tree is reused.
#
#   scripts/sanitizers/fetch_absl_source.sh DIR
set -euo pipefail

DIR="$(mkdir -p "$1" && cd "$1" && pwd)"
existing="$(find "$DIR" -maxdepth 1 -type d -name 'abseil-*' | head -1)"
if [ -n "$existing" ] && [ -f "$existing/absl/synchronization/mutex.cc" ]; then
  echo "$existing"
  exit 0
fi
mkdir -p "$DIR/apt/parts" "$DIR/apt/lists/partial"
. /etc/os-release
cat >"$DIR/apt/parts/src.sources" <<SOURCES
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: ${VERSION_CODENAME:-bookworm} ${VERSION_CODENAME:-bookworm}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
APT=(-o "Dir::Etc::SourceParts=$DIR/apt/parts" -o "Dir::Etc::SourceList=$DIR/apt/none.list"
     -o "Dir::State::Lists=$DIR/apt/lists")
: >"$DIR/apt/none.list"
apt-get "${APT[@]}" update >&2
version="$(dpkg-query -W -f='${source:Version}' libabsl20220623 2>/dev/null || true)"
(cd "$DIR" && apt-get "${APT[@]}" source --download-only "abseil${version:+=$version}" >&2)
orig="$(ls "$DIR"/abseil_*.orig.tar.* | head -1)"
tar -xf "$orig" -C "$DIR"
find "$DIR" -maxdepth 1 -type d -name 'abseil-*' | head -1
