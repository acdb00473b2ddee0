"""The README's first command keeps working: the demo settings (SQLite, no broker, DEBUG) migrate,
seed and serve the admin log-in page."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def demo_env(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SECRET_KEY",
                        "CELERY_TASK_ALWAYS_EAGER", "PYTEST_XDIST_WORKER"}}
    env.update(DEBUG="1", DJANGO_SETTINGS_MODULE="emobility.settings",
               DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}")
    return env


def _manage(env, *args, timeout=120):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=True)


def test_demo_settings_migrate_seed_twice_and_serve_the_admin_login(demo_env):
    _manage(demo_env, "migrate", "--noinput")
    first = _manage(demo_env, "seed_demo").stdout
    second = _manage(demo_env, "seed_demo").stdout  # a second run must not crash
    assert "finance.nl" in first and "finance.nl" in second
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT, env=demo_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/",
                                            timeout=5) as response:
                    body = response.read().decode()
                    status = response.status
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    server.kill()
                    pytest.fail(f"demo server did not answer:\n{server.stdout.read()}")
                time.sleep(0.3)
        assert status == 200
        assert "eMobility billing back office" in body
        assert 'name="username"' in body
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_production_settings_pass_the_deploy_check(demo_env):
    secret = "pK9#vL2@qW7!zR4%tY8^uI3&oP6*aS1(dF5)gH0-jK8+lZ2xC4vB6nM9qE1wT3yU"
    env = dict(demo_env, DEBUG="0", SECRET_KEY=secret,
               ALLOWED_HOSTS="billing.example.com")
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level",
                             "WARNING"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_to_start_without_a_secret_key(demo_env):
    env = dict(demo_env, DEBUG="0")
    env.pop("SECRET_KEY", None)
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
