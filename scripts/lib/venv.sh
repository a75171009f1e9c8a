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
