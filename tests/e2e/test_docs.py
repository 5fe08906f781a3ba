"""Every code block on every page runs: the Python blocks as a reader pastes them, the shell
commands in a scratch folder (tests/helpers/pages.py finds them; docs/development.md says the
rules), and the README opens with the two commands CI runs."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.helpers.pages import ROOT, Block, blocks, commands

pytestmark = pytest.mark.e2e  # the end-to-end tier

CI = (ROOT / ".ci" / "run").read_text()
CI_LINES = {line.strip() for line in CI.splitlines()}
CI_PARTS = {part.strip() for line in CI_LINES for part in line.split("&&")}
RUN_BY_CI = ("pip ", "ruff ", "mkdocs ", "python -m pytest")
# The words after which a command of the runner trains nothing.
NO_TRAINING = ("--list", "--help", "--show", "--calibrate", "--resume")


def test_the_readme_opens_with_the_two_commands_ci_runs():
    first = blocks("bash")[0]
    assert first.page.name == "README.md"
    lines = commands(first)
    assert len(lines) == 2
    assert "pip install -e" in lines[0] and "experiments.run" in lines[0]
    assert "pip install -e" in lines[1] and "pytest" in lines[1]
    for line in lines:
        assert line in CI_LINES, f"CI does not run the README command: {line}"


@pytest.mark.parametrize("block", blocks("python"), ids=Block.where)
def test_python_block_runs_on_its_own(block, tmp_path, monkeypatch):
    """Each block in a fresh namespace, as a reader pastes it: its own imports and names (in
    a scratch folder, where it may write its files)."""
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    exec(compile(block.text, block.where(), "exec"), namespace)
    # What the blocks that show a result say it is.
    if "snn" in namespace:  # the TTFS example: VGG-16's spiking network
        snn, surrogate = namespace["snn"], namespace["surrogate"]
        assert snn.latency == 544 and snn.logits.shape == (2, 10)
        assert snn.spike_times["conv4_1"].shape == (2, 4, 4, 512)
        assert (snn.logits.argmax(-1) == surrogate.logits.argmax(-1)).all()
        assert 0 < namespace["rate"] < 1
    if "out" in namespace and "images" in namespace:
        assert namespace["out"].logits.shape == (len(namespace["images"]), 10)
    if "history" in namespace:  # bj.fit on a separable toy problem learns it
        assert namespace["history"][-1]["test_accuracy"] > 0.7


def _shell_commands() -> list[tuple[Block, list[str]]]:
    return [(block, commands(block)) for block in blocks("bash")]


def _is_training_run(command: str) -> bool:
    return "-m experiments.run" in command and not any(w in command for w in NO_TRAINING)


def _out(command: str) -> str | None:
    words = shlex.split(command)
    return words[words.index("--out") + 1] if "--out" in words else None


def _run(command: str, cwd, env=None, expect: int = 0) -> str:
    words = shlex.split(command.rstrip("&").strip())
    assert words[0] == "python", command
    done = subprocess.run(
        [sys.executable, *words[1:]], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert done.returncode == expect, f"{command}: exit {done.returncode}\n{done.stderr[-2000:]}"
    return done.stdout


@pytest.mark.parametrize("case", _shell_commands(), ids=lambda c: c[0].where())
def test_shell_block_runs(case, tmp_path):
    """A block's commands, in order, in a scratch folder (with the repository's packages
    installed): what CI runs is checked against `.ci/run`; a command of the runner that would
    train runs with `--show` (every check, no training), except one whose folder a `--resume`
    of the block continues: it trains for real, is interrupted after its first epoch (as
    after Ctrl-C), and the `--resume` finishes it."""
    block, lines = case
    resumed = {_out(c) for c in lines if "--resume" in c}
    for command in lines:
        if command in CI_LINES:
            continue
        parts = [p.strip() for p in command.split("&&")]
        for part in parts:
            if part.startswith(RUN_BY_CI):
                assert part in CI_PARTS, f"{block.where()}: CI does not run `{part}`"
                continue
            if _is_training_run(part) and _out(part) in resumed:
                env = {
                    **os.environ,
                    "BNTT_JAX_FAULT": "committed@1",
                    "BNTT_JAX_FAULT_ACTION": "interrupt",
                }
                _run(part, tmp_path, env, expect=130)
            elif _is_training_run(part):
                shown = _run(f"{part.rstrip('&').strip()} --show", tmp_path)
                assert '"name"' in shown and '"time"' in shown
            else:
                _run(part, tmp_path)
                if "--resume" in part:
                    report = (tmp_path / _out(part) / "report.md").read_text()
                    assert "accuracy" in report.lower()
    assert not (tmp_path / "~").exists()


def test_every_shell_block_holds_a_command():
    found = _shell_commands()
    assert len(found) > 8 and all(lines for _, lines in found)
    trained = [c for _, lines in found for c in lines if "--resume" in c]
    assert trained, "no page shows a resume"
    assert re.search(r"mkdocs build --strict", CI), "CI builds the site strictly"
