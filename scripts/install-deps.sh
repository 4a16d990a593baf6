#!/usr/bin/env bash
# Installs the Debian 12 packages the runner needs to build, test and draw figures.
set -euo pipefail
pkgs=(cmake gcc make pkg-config libyaml-dev libhdf5-dev zlib1g-dev libopenblas-dev
      gnuplot-nox libcriterion-dev libdnnl-dev ca-certificates)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
