"""The README's two opening commands are what CI runs, and its notebook example is real."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # the end-to-end tier

ROOT = Path(__file__).parents[2]


def readme_commands():
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_opens_with_two_commands():
    commands = readme_commands()
    assert len(commands) == 2
    assert "pip install -e" in commands[0] and "experiments.run" in commands[0]
    assert "pip install -e" in commands[1] and "pytest" in commands[1]


def test_ci_runs_the_readme_commands():
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    for command in readme_commands():
        assert command in ci_lines, f"CI does not run the README command: {command}"


def python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [part.split("```", 1)[0] for part in text.split("```python\n")[1:]]


def test_readme_python_blocks_run_as_written():
    """Every Python block, each on its own in a fresh namespace, as a reader pastes it: its
    own imports and names, nothing from another block."""
    blocks = python_blocks()
    assert len(blocks) >= 6 and "bj.simulate" in blocks[0] and "bj.from_torch" in blocks[1]
    spaces = []
    for block in blocks:
        namespace: dict = {}
        exec(compile(block, "README.md", "exec"), namespace)
        spaces.append(namespace)
    assert spaces[0]["out"].logits.shape == (8, 10)
    assert spaces[1]["params"].config.num_steps == 25
    # the TTFS example: VGG-16's spiking network, its latency and spike accounting
    namespace = next(s for s in spaces if "snn" in s)
    snn, surrogate = namespace["snn"], namespace["surrogate"]
    assert snn.latency == 544 and snn.logits.shape == (2, 10)
    assert snn.spike_times["conv4_1"].shape == (2, 4, 4, 512)
    assert (snn.logits.argmax(-1) == surrogate.logits.argmax(-1)).all()
    assert 0 < namespace["rate"] < 1


def test_readme_names_no_internal_documents_or_issue_numbers():
    import re

    text = (ROOT / "README.md").read_text()
    assert "GUIDE" not in text and "../shared" not in text
    assert not re.search(r"#\d+\b", text) and "issue" not in text.lower()


def test_no_docstring_or_message_points_outside_the_repository():
    """Users have the repository only: no file of it cites an internal guide or issue."""
    import re

    files = [
        p
        for folder in ("bntt_jax", "experiments", "benchmarks", "notebooks")
        for p in (ROOT / folder).rglob("*")
        if p.suffix in (".py", ".md", ".ipynb", ".cc")
    ]
    assert len(files) > 20
    for path in files:
        text = path.read_text()
        assert "GUIDE" not in text and "../shared" not in text, path
        assert not re.search(r"\bissue #?\d+|\(#\d+\)", text, re.IGNORECASE), path
