#!/usr/bin/env bash
# Set up .venv and run every check TagDesk's CI runs: ruff (lint + format), the import
# contracts (lint-imports: no import cycle, layers models -> policy -> services -> adapters),
# mypy with django-stubs, Django's system checks (also with production settings), migrations
# up to date, and the pytest suite.
#
#   ./scripts/test.sh                 # SQLite in memory, no services needed
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
#   REDIS_URL=redis://127.0.0.1:6379/0 ./scripts/test.sh      # what .ci/run does
#
# Extra arguments go to pytest (e.g. ./scripts/test.sh tests/tagging -x). Every step runs even
# when an earlier one failed; the exit status is non-zero if any failed.
set -uo pipefail
# shellcheck source=scripts/_venv.sh
. "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" || exit 2

failed=()
step() {
    local name="$1"
    shift
    printf '\n==> %s\n' "$name"
    "$@" || failed+=("$name")
}

step "ruff check" ruff check .
step "ruff format --check" ruff format --check .
# Contracts in pyproject.toml [tool.importlinter]; graph cached in .import_linter_cache/.
step "lint-imports (import contracts)" lint-imports
# Types: pyproject.toml [tool.mypy] (strict on the policy, services, rules DSL and compiler);
# incremental cache in .mypy_cache/.
step "mypy" mypy
step "manage.py check" python manage.py check --fail-level WARNING
step "manage.py check --deploy (production-like settings)" \
    env DEBUG=0 SECRET_KEY="ci-only-$(python -c 'import secrets; print(secrets.token_urlsafe(48))')" \
    ALLOWED_HOSTS=tagdesk.example.com python manage.py check --deploy --fail-level WARNING
step "manage.py makemigrations --check --dry-run" python manage.py makemigrations --check --dry-run

# Tests marked `worker` start a real Celery worker on REDIS_URL; they run first, one at a time,
# so two workers never consume each other's tasks. Then the rest, in parallel: each xdist worker
# gets its own test database (test_<name>_gw0, _gw1, ...).
if [ $# -eq 0 ] && python -m pytest -m worker --collect-only -q >/dev/null 2>&1; then
    step "pytest -m worker (real Celery worker on ${REDIS_URL:-<REDIS_URL unset: they skip>})" \
        python -m pytest -m worker -q -p no:cacheprovider
fi

# Tests marked `browser` (tests/browser) drive a headless Chromium against a live server over a
# transactional database: their own serial step, like the worker tests. They skip, saying why,
# where no chromium/chromedriver is installed (.ci/run installs them). Screenshots of failures
# land in var/browser-screens/.
if [ $# -eq 0 ]; then
    step "pytest -m browser (headless Chromium, live server)" \
        python -m pytest -m browser -q -p no:cacheprovider -rs
fi

pytest_all() {
    python -m pytest "$@"
    local rc=$?
    if [ "$rc" -eq 5 ]; then
        echo "pytest collected no tests: that is a failure" >&2
        return 1
    fi
    return "$rc"
}
WORKERS="${PYTEST_WORKERS:-2}"
XDIST=()
if [ "$WORKERS" != "0" ] && [ "$WORKERS" != "1" ]; then
    XDIST=(-n "$WORKERS")
fi
MARKS="not worker and not browser"
if [ $# -ne 0 ]; then
    MARKS="not worker"  # explicit arguments: run what they name, browser tests included
fi
step "pytest ${XDIST[*]} -m '${MARKS}' (database: ${DATABASE_URL:-SQLite in memory})" \
    pytest_all "${XDIST[@]}" -m "${MARKS}" -q -p no:cacheprovider "$@"

echo
if [ ${#failed[@]} -ne 0 ]; then
    printf '==> FAILED: %s\n' "${failed[@]}"
    exit 1
fi
echo "==> all checks passed"
