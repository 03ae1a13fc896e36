import importlib
import pkgutil
import shutil
import subprocess
import sys

import pytest

from flows import commands
from flows.cli import build_parser, main


def test_revs_help_from_the_installed_console_script():
    exe = shutil.which("revs") or str(__import__("pathlib").Path(sys.executable).with_name("revs"))
    result = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "usage: revs" in result.stdout


def test_every_command_module_registers_a_handler():
    names = [m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")]
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in names:
        module = importlib.import_module(f"flows.commands.{name}")
        assert callable(module.register), name
        assert callable(module.run), name
    assert set(sub.choices) >= set(names) - {"commands"}


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
