# Two commands a newcomer needs (see README): `make demo` and `make test`.
.PHONY: demo test ci seed clean

demo:  ## set up .venv, migrate, seed demo data into SQLite, run the server on 127.0.0.1:8000
	./scripts/demo.sh

test:  ## set up .venv and run lint, checks and the test suite (SQLite unless DATABASE_URL is set)
	./scripts/test.sh

ci:  ## what CI runs: PostgreSQL + Redis on 127.0.0.1, then `make test`
	bash .ci/run

clean:
	rm -rf .venv var/tagdesk.sqlite3 .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
