"""Keep the README true: its code runs, its plugin table is the registry, its commands are what CI runs."""

import re
from pathlib import Path

import pytest

from edm_sampler.registry import _BUILTINS, resolve

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_python_snippets_run(index, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    exec(compile(python_blocks()[index], f"README.md[python block {index}]", "exec"), {})
    printed = capsys.readouterr().out
    if "print(" in python_blocks()[index]:
        # the comment after print(...) in the README is the output it must produce
        expected = re.search(r"print\(.*\)\s*#\s*(.*)", python_blocks()[index]).group(1).strip()
        assert printed.strip() == expected


def test_plugin_table_matches_registry():
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)`[^|]*\| (\S+) \| (\S+) \|$", README, flags=re.M)
    table = {short: (cls, sgm.strip("`"), gm.strip("`")) for short, cls, sgm, gm in rows}
    expected = {short: (cls, sgm or "—", gm or "—") for short, (_, cls, sgm, gm) in _BUILTINS.items()}
    assert table == expected
    for short, (cls, _, _) in table.items():
        assert resolve(short).__name__ == cls


def test_ci_runs_the_readme_commands():
    commands = re.search(r"```bash\n# 1\..*?\n(.*?)\n# 2\..*?\n(.*?)\n```", README, flags=re.S)
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands.group(1) in ci and commands.group(2) in ci
