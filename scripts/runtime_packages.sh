#!/usr/bin/env bash
# Prints the Debian packages that provide the shared libraries the given binaries link directly
# (their DT_NEEDED entries, resolved to paths by ldd, then dpkg -S), one per line, sorted. The
# container's runtime stage installs these; apt brings their own dependencies, and no -dev
# package or compiler comes along.
#   scripts/runtime_packages.sh build/server/lorad build/tools/loractl
set -euo pipefail
if [ $# -eq 0 ]; then
  echo "usage: runtime_packages.sh BINARY..." >&2
  exit 2
fi
libs=()
for bin in "$@"; do
  needed=" $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ') "
  while read -r name path; do
    case "$needed" in *" $name "*) libs+=("$path") ;; esac
  done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}')
done
if [ ${#libs[@]} -eq 0 ]; then exit 0; fi
for lib in $(printf '%s\n' "${libs[@]}" | sort -u); do
  # dpkg knows the path the package installed (/lib vs /usr/lib on merged-/usr systems).
  real="$(readlink -f "$lib")"
  pkg="$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}" 2>/dev/null || true)"
  if [ -z "$pkg" ]; then
    echo "runtime_packages: no Debian package owns $lib" >&2
    exit 1
  fi
  echo "${pkg%%:*}" | sed 's/,.*//'
done | sort -u
