"""Keep the documentation site true: the nav and the pages agree, the pages' code runs and prints what it says, the
plugin table is the registry, every figure comes from a command the page shows, the API reference covers every module
of the public API, and `mkdocs build --strict` passes (and fails on a broken link or reference)."""

import copy
import importlib.util
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import edm_sampler
from edm_sampler import registry
from edm_sampler.registry import _BUILTINS, resolve

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CONFIG = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
EXCLUDED = set(CONFIG["exclude_docs"].split())  # files in docs/ that are not pages (the API reader's extension)
PAGES = sorted(p.name for p in DOCS.glob("*.md") if p.name not in EXCLUDED)
README = ROOT / "README.md"  # the front door: short, linking into these pages

# Every figure under docs/, and the command (shown on the page that shows the figure) that writes it.
FIGURES = {
    "eval_quality_vs_nfe.png": "edm-sampler eval --csv eval_out/eval.csv --plot eval_out/eval_quality_vs_nfe.png",
    "glyphs_unet_samples.png": "edm-sampler sample --config glyphs_unet_heun_cfg --out unet.png",
    "schedules.png": "examples/plot_sampling.py --outdir plots",
    "trajectory.png": "examples/plot_sampling.py --outdir plots",
    "train_glyphs_loss.png": "examples/train_glyphs.py",
}


def nav_files(nav) -> list[str]:
    files = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        files += nav_files(value) if isinstance(value, list) else [value]
    return files


def page_text(name: str) -> str:
    """A page of the site, or the README (which links into it from the repository root)."""
    return (README if name == "README.md" else DOCS / name).read_text()


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def bash_commands(text: str) -> list[str]:
    """The command lines of the page's bash blocks, comments removed."""
    lines = [line for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S) for line in block.splitlines()]
    return [line.split(" #")[0].strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_nav_lists_every_page_once_and_nothing_else():
    files = nav_files(CONFIG["nav"])
    assert len(files) == len(set(files)), f"pages listed twice: {sorted(f for f in files if files.count(f) > 1)}"
    assert sorted(files) == PAGES, (
        f"in docs/ but not in the nav: {sorted(set(PAGES) - set(files))}; "
        f"in the nav but not in docs/: {sorted(set(files) - set(PAGES))}"
    )


SNIPPETS = [(name, i) for name in PAGES + ["README.md"] for i in range(len(python_blocks(page_text(name))))]


@pytest.mark.parametrize("page,index", SNIPPETS, ids=[f"{name}[{i}]" for name, i in SNIPPETS])
def test_python_snippets_run(page, index, monkeypatch, capsys):
    block = python_blocks(page_text(page))[index]
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(registry, "_NAMES", dict(registry._NAMES))  # a snippet's register() does not leak
    exec(compile(block, f"docs/{page}[python block {index}]", "exec"), {})
    printed = capsys.readouterr().out
    if "print(" in block:
        # the comment after print(...) is the output the block must produce
        expected = re.search(r"print\(.*\)\s*#\s*(.*)", block).group(1).strip()
        assert printed.strip() == expected


def test_plugin_table_matches_registry():
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)`[^|]*\| (\S+) \| (\S+) \|$", page_text("configs.md"), flags=re.M)
    table = {short: (cls, sgm.strip("`"), gm.strip("`")) for short, cls, sgm, gm in rows}
    expected = {short: (cls, sgm or "—", gm or "—") for short, (_, cls, sgm, gm) in _BUILTINS.items()}
    assert table == expected
    for short, (cls, _, _) in table.items():
        assert resolve(short).__name__ == cls


def test_every_figure_is_shown_next_to_the_command_that_writes_it():
    assert sorted(p.name for p in DOCS.glob("*.png")) == sorted(FIGURES), "a new figure needs its command here"
    shown = {}
    for name in PAGES:
        for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page_text(name)):
            shown.setdefault(image, []).append(name)
    assert sorted(shown) == sorted(FIGURES), "every figure shown once at least, and only those under docs/"
    for image, pages in shown.items():
        for name in pages:
            assert any(FIGURES[image] in command for command in bash_commands(page_text(name))), (name, image)


def test_no_command_on_the_pages_writes_a_tracked_file():
    """A reader running the pages' commands as written leaves the repository's files alone: outputs go to new paths
    (the figures under docs/ are rewritten only on request, which the pages say in prose or a comment)."""
    tracked = set()
    if (ROOT / ".git").exists():
        listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        tracked = set(listed.splitlines())
    outputs = [
        (name, path)
        for name in PAGES + ["README.md"]
        for command in bash_commands(page_text(name))
        for path in re.findall(r"--(?:out|outdir|out-dir|plot|csv|json|site-dir)[ =]([^\s#]+)", command)
    ]
    assert len(outputs) >= 8  # sample, generate, eval, plot_sampling, bench, the examples...
    for name, path in outputs:
        assert not path.startswith("docs") and path not in tracked, (name, path)


def output_block(text: str, marker: str) -> str:
    """The ``` block (no language) of ``text`` that contains ``marker``."""
    blocks = re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M)
    return next(block for language, block in blocks if not language and marker in block)


def test_main_job_output_is_the_readmes():
    """Getting started shows the main job's output as the README does, which test_readme checks by a run."""
    marker = "wrote:         samples.png"
    assert output_block(page_text("getting-started.md"), marker) == output_block(README.read_text(), marker)


def test_api_reference_covers_every_module_of_the_public_api():
    documented = set()
    for name in PAGES:
        documented |= set(re.findall(r"^::: ([\w.]+)$", page_text(name), flags=re.M))
    exported = [getattr(edm_sampler, name) for name in edm_sampler.__all__]
    exported = [obj for obj in exported if inspect.isclass(obj) or inspect.isfunction(obj)]
    missing = sorted(
        f"{obj.__module__}.{obj.__name__}"
        for obj in exported
        if obj.__module__ not in documented and f"{obj.__module__}.{obj.__name__}" not in documented
    )
    assert not missing, f"add `::: <module>` (or `::: <module>.<name>`) to an api-*.md page for: {missing}"


def test_readme_is_short_and_links_into_the_docs():
    text = README.read_text()
    assert len(text.encode()) <= 12 * 1024
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    assert {link for link in local if link.startswith("docs/") and link.endswith(".md")}, "no link into the docs"
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, f"links to files that do not exist (relative to the repository root): {missing}"
    commands = re.search(r"```bash\n# 1\..*?\n(.*?)\n# 2\..*?\n(.*?)\n```", text, flags=re.S)
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands and commands.group(1) in ci and commands.group(2) in ci


mkdocs_missing = pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None, reason="mkdocs not installed (pip install -e '.[docs]')"
)


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        capture_output=True,
        text=True,
        env={"PATH": str(Path(sys.executable).parent), "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )


@mkdocs_missing
def test_strict_build_passes_outside_the_repository(tmp_path):
    had_site = (ROOT / "site").exists()
    result = mkdocs_build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").exists() and (tmp_path / "site" / "api-samplers" / "index.html").exists()
    assert (ROOT / "site").exists() == had_site  # nothing written inside the repository


@mkdocs_missing
@pytest.mark.parametrize(
    "bad_lines, messages",
    [
        ("[a page](no_such_page.md)\n\n[a section](index.md#no-such-anchor)", ("no_such_page.md", "no-such-anchor")),
        ("::: edm_sampler.no_such_module", ("edm_sampler.no_such_module",)),
    ],
    ids=["broken links", "missing API reference"],
)
def test_strict_build_fails_on_a_broken_link_or_reference(tmp_path, bad_lines, messages):
    """The site's own settings (validation, mkdocstrings), on a two-page site with broken lines."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\n[the API](api.md)\n")
    (docs / "api.md").write_text(f"# API\n\n::: edm_sampler.noise\n\n{bad_lines}\n")
    config = copy.deepcopy(CONFIG) | {"docs_dir": str(docs), "nav": [{"Home": "index.md"}, {"API": "api.md"}]}
    config.pop("exclude_docs")
    plugin = next(entry for entry in config["plugins"] if isinstance(entry, dict) and "mkdocstrings" in entry)
    python = plugin["mkdocstrings"]["handlers"]["python"]
    python["paths"] = [str(ROOT / "src")]
    python["options"]["extensions"] = [str(DOCS / "_griffe_extensions.py")]
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    result = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0 and all(message in result.stderr for message in messages), result.stderr[-3000:]
