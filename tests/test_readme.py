"""The README's first screen for a newcomer (issue 26): the title, what nnparity is, the set-up section with the two
commands and one measured time each, the certify + port example and the zoo table's link, all within SCREEN lines;
the set-up times' history lives in reports/README.md; the example's commands parse with the command line's own
parser."""

from __future__ import annotations

import shlex
from pathlib import Path

from nnparity import cli

ROOT = Path(__file__).resolve().parents[1]
SCREEN = 40


def _setup() -> list[str]:
    lines = (ROOT / "README.md").read_text().splitlines()
    second = [i for i, line in enumerate(lines) if line.startswith("## ")][1]
    return lines[:second]


def test_the_set_up_section_fits_on_one_screen_and_says_what_to_run():
    top = _setup()
    assert len(top) <= SCREEN, len(top)
    text = "\n".join(top)
    for must in ("bash run.sh test", "bash run.sh main", "nnparity certify", "nnparity port", "(reports/ZOO.md)",
                 "min"):  # fmt: skip
        assert must in text, must


def test_the_example_commands_are_ones_the_command_line_takes():
    commands = [line.strip() for line in _setup() if line.startswith("    .venv/bin/nnparity ")]
    assert len(commands) == 2
    for line in commands:
        cli.parser().parse_args(shlex.split(line, comments=True)[1:])  # SystemExit on an option it does not know


def test_the_set_up_times_history_is_in_the_reports_readme():
    history = (ROOT / "reports" / "README.md").read_text()
    for measured in ("8 min 58 s", "10 min 22 s", "13 min 47 s", "239 s cold"):
        assert measured in history, measured
