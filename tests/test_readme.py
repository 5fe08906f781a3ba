"""The README's two opening commands are what CI runs, and its notebook example is real."""

from pathlib import Path

ROOT = Path(__file__).parents[1]


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
