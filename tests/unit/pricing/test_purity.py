"""The pricing package is pure Python: no Django, no clock."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "tariffs" / "pricing"


def test_importing_the_engine_loads_no_django():
    code = ("import sys, tariffs.pricing.engine, tariffs.pricing.ocpi, tariffs.pricing.cli; "
            "print(any(m == 'django' or m.startswith('django.') for m in sys.modules))")
    completed = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE.parents[1],
                               capture_output=True, text=True, timeout=60, check=True)
    assert completed.stdout.strip() == "False"


def test_no_module_of_the_package_imports_django_or_reads_the_clock():
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] == "django" for n in names), path.name
            if isinstance(node, ast.Attribute) and node.attr in ("now", "utcnow", "today"):
                raise AssertionError(f"{path.name} reads the clock")
