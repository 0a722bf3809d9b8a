"""The one runner of external command-line tools: a missing tool names its install command, a failing one its
command and last output, and a probe never raises."""

from __future__ import annotations

import sys

import pytest

from mlops_workbench import tools
from mlops_workbench.errors import ToolError, ToolFailed, ToolMissing, WorkbenchError


def test_a_missing_tool_names_its_install_command(monkeypatch):
    monkeypatch.setattr(tools, "find", lambda tool: None)
    with pytest.raises(ToolMissing, match=r"^helm not found: install helm \(https://helm.sh"):
        tools.require("helm")
    with pytest.raises(ToolMissing, match="^nosuchtool-xyz cannot run .*: install nosuchtool-xyz"):
        tools.run(["nosuchtool-xyz", "--version"])
    assert issubclass(ToolMissing, ToolError) and issubclass(ToolError, WorkbenchError)


def test_run_returns_stdout_and_a_failure_shows_the_command_and_its_last_lines():
    assert tools.run([sys.executable, "-c", "print('hi')"]) == "hi\n"
    assert tools.run([sys.executable, "-c", "import sys; print('x'); sys.exit(3)"], check=False) == "x\n"
    script = "import sys; [print(f'line {i}', file=sys.stderr) for i in range(9)]; sys.exit(4)"
    with pytest.raises(ToolFailed) as err:
        tools.run([sys.executable, "-c", script])
    message = str(err.value)
    assert "failed (exit 4)" in message and "line 8" in message and "line 3" not in message
    with pytest.raises(ToolFailed, match="did not finish within 1s"):
        tools.run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=1)


def test_probe_answers_instead_of_raising():
    assert tools.probe([sys.executable, "-c", "print('ok')"]) == (0, "ok")
    code, why = tools.probe(["nosuchtool-xyz"])
    assert code == 127 and "nosuchtool-xyz" in why
