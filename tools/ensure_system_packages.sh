#!/usr/bin/env bash
# Installs the Debian packages the project needs when they are missing (run by `make run` and `make test`).
#   libpango: WeasyPrint;  fonts-wqy-zenhei: CJK text in certificates;
#   rabbitmq-server: the broker when AMQP_URI is not given;  chromium, chromium-driver: browser tests.
set -euo pipefail
packages=(python3-venv libpango-1.0-0 libpangoft2-1.0-0 fonts-wqy-zenhei rabbitmq-server chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing missing system packages: ${missing[*]}"
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
if ! $sudo_cmd apt-get install -y --no-install-recommends "${missing[@]}"; then
  $sudo_cmd apt-get update
  $sudo_cmd apt-get install -y --no-install-recommends "${missing[@]}"
fi
