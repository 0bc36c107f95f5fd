# chemloop — `make run` (SQLite demo, jobs in-process) and `make test` (PostgreSQL + Redis).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/chemloop
REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: run test lint format worker clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed-local: $(VENV)/bin/python requirements/base.txt requirements/test.txt requirements/local.txt
	$(PIP) install --quiet -r requirements/local.txt
	touch $@

run: $(VENV)/.installed-local
	env -u DATABASE_URL -u REDIS_URL DJANGO_SETTINGS_MODULE=config.settings.local $(PY) manage.py migrate --noinput
	env -u DATABASE_URL -u REDIS_URL DJANGO_SETTINGS_MODULE=config.settings.local $(PY) manage.py seed_demo
	env -u DATABASE_URL -u REDIS_URL DJANGO_SETTINGS_MODULE=config.settings.local $(PY) manage.py runserver 127.0.0.1:8000

test: $(VENV)/.installed-local
	$(VENV)/bin/ruff check .
	DATABASE_URL=$(DATABASE_URL) $(PY) bin/ensure_database.py
	DATABASE_URL=$(DATABASE_URL) REDIS_URL=$(REDIS_URL) $(PY) -m pytest $(PYTEST_ARGS)

lint:
	$(VENV)/bin/ruff check .

format:
	$(VENV)/bin/ruff format .

worker: $(VENV)/.installed-local
	$(PY) manage.py rqworker default

clean:
	rm -rf $(VENV) db.sqlite3 .test-media
