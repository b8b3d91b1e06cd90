#!/usr/bin/env bash
# Installs what gr-modrec needs, skipping whatever is already there.
#   scripts/setup.sh runtime    OS packages + .venv with the runtime deps (numpy, onnxruntime)
#   scripts/setup.sh training   the same plus torch and the test tools
# Idempotent: each step leaves a stamp in .venv keyed by the requirement file's content.
set -euo pipefail

profile=${1:-runtime}
case "$profile" in
  runtime|training) ;;
  *) echo "setup.sh: unknown profile '$profile' (expected 'runtime' or 'training')" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

# GNU Radio and its Python bindings come from the OS: they are built against the OS's
# python3 and numpy, which is why the venv uses --system-site-packages.
apt_packages=(gnuradio gnuradio-dev pybind11-dev castxml python3-pygccxml python3-venv
              python3-scipy python3-matplotlib cmake g++ make pkg-config)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing OS packages: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
else
  echo "setup: OS packages present"
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi

stamp="$VENV/.modrec-$profile-$(cat requirements/constraints.txt requirements/runtime.txt requirements/$profile.txt | sha1sum | cut -c1-12)"
if [ -e "$stamp" ]; then
  echo "setup: Python $profile dependencies present ($stamp)"
else
  echo "setup: installing Python $profile dependencies"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q \
    -c requirements/constraints.txt -r "requirements/$profile.txt"
  "$VENV/bin/python" -c "import numpy, onnxruntime; from gnuradio import gr" || {
    echo "setup: the venv cannot import numpy/onnxruntime/gnuradio after install" >&2; exit 1; }
  touch "$stamp"
fi
