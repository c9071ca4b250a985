#!/usr/bin/env bash
# Fills in plugins/horolog.yaml for a release: the version, and the sha256 of each platform's
# archive (kubectl-horolog-VERSION-OS-ARCH.tar.gz in DIST). Prints the manifest for krew-index.
#   bash .ci/krew-manifest.sh v0.2.0 dist/ > horolog.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:?usage: krew-manifest.sh VERSION DIST_DIR}
dist=${2:?usage: krew-manifest.sh VERSION DIST_DIR}
manifest=$(sed "s/{{VERSION}}/$version/g" plugins/horolog.yaml)
for platform in linux-amd64 linux-arm64 darwin-arm64 darwin-amd64; do
  archive="$dist/kubectl-horolog-$version-$platform.tar.gz"
  [ -f "$archive" ] || { echo "missing $archive" >&2; exit 1; }
  sum=$(sha256sum "$archive" | cut -d' ' -f1)
  key="SHA256_$(echo "$platform" | tr 'a-z-' 'A-Z_')"
  manifest=${manifest//"{{$key}}"/$sum}
done
if grep -q '{{' <<<"$manifest"; then
  echo "placeholders left: $(grep -o '{{[A-Z0-9_]*}}' <<<"$manifest" | sort -u | tr '\n' ' ')" >&2
  exit 1
fi
printf '%s\n' "$manifest"
