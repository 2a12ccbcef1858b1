"""Keep the README true: its code runs, its commands are what CI runs, and the main job prints what it shows (the
plugin table and the commands' outputs are checked on the documentation pages, tests/test_docs.py)."""

import re
from pathlib import Path

import pytest

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


def test_ci_runs_the_readme_commands():
    commands = re.search(r"```bash\n# 1\..*?\n(.*?)\n# 2\..*?\n(.*?)\n```", README, flags=re.S)
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands.group(1) in ci and commands.group(2) in ci


def output_block(marker):
    """The README's ``` block (no language) that contains ``marker``."""
    blocks = re.findall(r"^```(\w*)\n(.*?)^```", README, flags=re.S | re.M)
    return next(text for language, text in blocks if not language and marker in text)


def fields(text):
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def test_main_job_prints_what_the_readme_shows(tmp_path, monkeypatch, capsys):
    """`edm-sampler sample` prints the README's block: every line exactly, except the wall time and the mean
    distance, whose digits depend on the CPU's float32 kernels and must only stay below the bound the README
    states (a correct run on another CPU prints e.g. 2.77e-08 where this README says 3.1e-08)."""
    from edm_sampler.cli import main

    shown = fields(output_block("wrote:         samples.png"))
    bound = float(re.search(r"mean distance that may differ but stays below (\S+)\s", README).group(1))
    monkeypatch.chdir(tmp_path)
    assert main(["sample", "--no-progress"]) == 0
    printed = fields(capsys.readouterr().out)
    assert set(shown) == set(printed) - {"config"}
    for key in shown.keys() - {"wall time", "mean distance"}:
        assert printed[key] == shown[key], key
    assert float(shown["mean distance"].split()[0]) < bound and float(printed["mean distance"].split()[0]) < bound
    assert printed["mean distance"].split()[1:] == shown["mean distance"].split()[1:]  # the explanation
