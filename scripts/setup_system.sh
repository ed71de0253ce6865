#!/usr/bin/env bash
# Installs the Debian packages the toolkit needs (FFCV's build, graphviz for cell plots)
# when they are missing and we can (root with apt); otherwise says what to install.
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
elif command -v dpkg-query >/dev/null; then
  echo "setup: missing system packages: ${missing[*]} -- install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
else
  echo "setup: not a Debian system; install pkg-config, OpenCV and libjpeg-turbo development files and graphviz by hand (see README)" >&2
fi
