# Two commands matter: `make demo` runs the product, `make test` runs the whole test suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO_ENV := DEBUG=1 DATABASE_URL=sqlite:///db.sqlite3 REDIS_URL= CELERY_BROKER_URL=

.PHONY: demo serve test test-fast lint format worker beat migrations clean help

help:
	@echo "make demo    run the back office with demo data on http://127.0.0.1:8000 (SQLite)"
	@echo "make test    run the whole test suite (PostgreSQL + Redis, real Celery worker, browser)"
	@echo "make lint    ruff"
	@echo "make worker  a Celery worker on REDIS_URL     make beat  Celery beat (schedules in the DB)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(DEMO_ENV) $(BIN)/python manage.py migrate --noinput
	$(DEMO_ENV) $(BIN)/python manage.py seed_demo
	$(DEMO_ENV) $(BIN)/python manage.py runserver 127.0.0.1:8000

test: $(VENV)/.installed
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .

format: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrations: $(VENV)/.installed
	DEBUG=1 $(BIN)/python manage.py makemigrations

worker: $(VENV)/.installed
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} DEBUG=$${DEBUG:-1} \
		$(BIN)/celery -A emobility worker --loglevel=INFO

beat: $(VENV)/.installed
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} DEBUG=$${DEBUG:-1} \
		$(BIN)/celery -A emobility beat --loglevel=INFO

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache
