#!/usr/bin/env bash
# Optional system package for the fast CPU path: Debian's oneDNN headers
# (libdnnl-dev, the engine PyTorch uses), compiled into native/dnnl by npm ci.
# Never fails: without it cmkg trains on its onnxruntime kernels (slower).
if [ -f /usr/include/oneapi/dnnl/dnnl.hpp ]; then exit 0; fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo -n"; fi
export DEBIAN_FRONTEND=noninteractive
echo "cmkg: installing libdnnl-dev (Debian) for fast CPU training..."
if $sudo apt-get install -y -q libdnnl-dev >/dev/null 2>&1 ||
  { $sudo apt-get update -q >/dev/null 2>&1 && $sudo apt-get install -y -q libdnnl-dev >/dev/null 2>&1; }; then
  echo "cmkg: libdnnl-dev installed."
else
  echo "cmkg: could not install libdnnl-dev; training will use the onnxruntime kernels (slower)."
fi
exit 0
