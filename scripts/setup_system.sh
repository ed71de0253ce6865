#!/usr/bin/env bash
# Pre-flight of `make setup`: a supported Python, a C compiler, and the Debian packages the
# toolkit needs (FFCV's build, graphviz for cell plots, chromium for report checks). Installs
# what is missing where it can (root with apt); otherwise names the command and exits 1.
set -euo pipefail
PYTHON=${PYTHON:-python3}
fail() { echo "setup: $*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null || fail "no $PYTHON found -- install Python >= 3.10 (Debian: apt-get install python3 python3-venv)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || fail "$("$PYTHON" -V 2>&1) is too old: Python >= 3.10 is needed (Debian: apt-get install python3)"
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null \
  || fail "$PYTHON cannot make a virtual environment -- install it with: apt-get install python3-venv"

missing=()
command -v cc >/dev/null || missing+=(build-essential)
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "setup: installing ${missing[*]} (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || fail "apt-get could not install ${missing[*]} -- install them by hand: apt-get install ${missing[*]}"
elif command -v dpkg-query >/dev/null; then
  fail "missing system packages: ${missing[*]} -- install them with: sudo apt-get install ${missing[*]}"
else
  command -v cc >/dev/null || fail "no C compiler -- install gcc (FFCV builds from source)"
  command -v pkg-config >/dev/null && pkg-config --exists opencv4 libturbojpeg \
    || fail "not a Debian system and pkg-config cannot find opencv4/libturbojpeg -- install pkg-config, OpenCV and libjpeg-turbo development files"
fi
