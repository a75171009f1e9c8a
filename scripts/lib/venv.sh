# shellcheck shell=bash
# Sourced by scripts/*.sh: create .venv and install the project (with dev extras) when the
# virtual environment is missing or pyproject.toml changed since the last install.
ensure_venv() {
  local py="${PYTHON:-python3}" stamp=.venv/.installed
  if [ ! -x .venv/bin/python ]; then
    echo "creating .venv with $($py --version)" >&2
    "$py" -m venv .venv
  fi
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "installing jobgate and its dev tools into .venv" >&2
    .venv/bin/python -m pip install -q --upgrade pip >&2
    .venv/bin/python -m pip install -q -e ".[dev]" >&2
    touch "$stamp"
  fi
}

# promtool (for `promtool check rules` in the tests), taken out of Debian's prometheus
# package without installing a Prometheus server; the rule tests skip when it is missing.
ensure_promtool() {
  [ -x .venv/bin/promtool ] && return 0
  command -v apt-get >/dev/null 2>&1 || return 0
  local dest="$PWD/.venv/bin" tmp
  tmp="$(mktemp -d)"
  if (cd "$tmp" && { apt-get download prometheus >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null 2>&1 && apt-get download prometheus >/dev/null 2>&1; }; } \
      && dpkg-deb -x prometheus_*.deb x && cp x/usr/bin/promtool "$dest/"); then
    echo "installed promtool into .venv/bin" >&2
  else
    echo "could not install promtool; the rule checks will be skipped" >&2
  fi
  rm -rf "$tmp"
}
