#!/usr/bin/env bash
# Optional system package for the sweep engine (cmkg run --cluster, cmkg worker):
# Debian's redis-server, which the engine's tests start on a free port of their own.
# Never fails: without it everything but the engine works, and its tests fail on CI naming this.
if [ -f /usr/bin/redis-server ]; then exit 0; fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo -n"; fi
export DEBIAN_FRONTEND=noninteractive
echo "cmkg: installing redis-server (Debian) for the sweep engine..."
if $sudo apt-get install -y -q redis-server >/dev/null 2>&1 ||
  { $sudo apt-get update -q >/dev/null 2>&1 && $sudo apt-get install -y -q redis-server >/dev/null 2>&1; }; then
  echo "cmkg: redis-server installed."
else
  echo "cmkg: could not install redis-server; cmkg run --cluster needs a Redis server elsewhere."
fi
exit 0
