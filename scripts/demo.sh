#!/usr/bin/env bash
# Set up .venv, create the SQLite database, fill it with demo data (once) and run the server.
#
#   ./scripts/demo.sh                      # 2,000 demo customers, http://127.0.0.1:8000/admin/
#   DEMO_CUSTOMERS=20000 ./scripts/demo.sh
#   DEMO_RESET=1 ./scripts/demo.sh         # throw the demo data away and seed again
#   DEMO_PORT=8001 ./scripts/demo.sh
set -euo pipefail
# shellcheck source=scripts/_venv.sh
. "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"

PORT="${DEMO_PORT:-8000}"
echo "==> database: ${DATABASE_URL:-SQLite file var/tagdesk.sqlite3}"
python manage.py migrate --noinput -v 0

if [ -n "${DEMO_RESET:-}" ]; then
    python manage.py seed_demo --customers "${DEMO_CUSTOMERS:-2000}" --reset
else
    python manage.py seed_demo --customers "${DEMO_CUSTOMERS:-2000}" --if-empty
fi

echo
echo "==> TagDesk admin: http://127.0.0.1:${PORT}/admin/   login: admin / TagDesk-demo-2026"
echo "    (other demo logins are listed above; API docs: http://127.0.0.1:${PORT}/api/docs/)"
echo "    Stop with Ctrl-C."
exec python manage.py runserver "127.0.0.1:${PORT}"
