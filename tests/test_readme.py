"""Keep the README true: its code runs, its plugin table is the registry, its commands are what CI runs."""

import re
import subprocess
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


def bash_lines():
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        yield from block.splitlines()


def test_readme_commands_write_no_tracked_file():
    """Running the README's commands as written leaves the repository's files alone: outputs go to new paths (the
    docs' figures are rewritten only on request, e.g. `--plot docs/...`, which the README says in prose)."""
    tracked = set()
    if (ROOT / ".git").exists():
        listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        tracked = set(listed.splitlines())
    outputs = [
        path
        for line in bash_lines()
        for path in re.findall(r"--(?:out|outdir|out-dir|plot|csv|json)[ =]([^\s#]+)", line.split("#")[0])
    ]
    assert len(outputs) >= 5  # the sample, generate, eval, plot and bench commands
    for path in outputs:
        assert not path.startswith("docs") and path not in tracked, path


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
