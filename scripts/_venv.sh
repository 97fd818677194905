# Sourced by scripts/test.sh and scripts/demo.sh: make sure .venv exists (python3 >= 3.11),
# install the project with `pip install -e ".[dev]"` when needed, and activate it.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "TagDesk needs Python >= 3.11 (set PYTHON=/path/to/python3.11-or-newer)." >&2
    exit 2
fi
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv with $("$PYTHON" --version)"
    "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
STAMP=.venv/.tagdesk-installed
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ] || ! python -m pip show tagdesk >/dev/null 2>&1; then
    echo "==> pip install -e \".[dev]\""
    python -m pip install --quiet -e ".[dev]"
    touch "$STAMP"
fi
