"""docs/quickstart.rst as data: its commands, in order, and the actions the page asks of the operator.

A command is a line of a ``.. code-block:: console`` block that starts with ``master# `` or
``slave# ``; the following lines of the block that start with no prompt belong to it (a
here-document). ``.. quickstart-action: NAME`` comments name a step that is not a command
(unplugging a cable). Only the page's three addresses are replaced when the commands run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "quickstart.rst"
PROMPT = re.compile(r"(master|slave)# (.+)")
ACTION = re.compile(r"\s*\.\. quickstart-action: ([a-z-]+)\s*")
CODE_BLOCK = re.compile(r"(\s*)\.\. code-block:: console\s*")
#: The page's addresses → the names of the rig's hosts standing for them.
ADDRESSES = {"10.0.0.1": "master", "10.0.0.2": "slave", "10.0.0.254": "witness"}


@dataclass
class Command:
    node: str  # "master" or "slave"
    text: str  # the shell text, here-document lines included
    line: int  # line number in the page, for messages


@dataclass
class Action:
    name: str
    line: int


def steps(text: str | None = None) -> list[Command | Action]:
    text = PAGE.read_text() if text is None else text
    found: list[Command | Action] = []
    block_indent: int | None = None  # the directive's indentation while inside a code block
    content_indent: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        indent = len(line) - len(line.lstrip())
        if block_indent is not None and line.strip() and indent <= block_indent:
            block_indent = None
        if block_indent is None:
            directive = CODE_BLOCK.fullmatch(line)
            if directive:
                block_indent, content_indent = len(directive.group(1)), None
                continue
            action = ACTION.fullmatch(line)
            if action:
                found.append(Action(action.group(1), number))
            continue
        if not line.strip():
            continue
        if content_indent is None:
            content_indent = indent
        body = line[content_indent:]
        prompt = PROMPT.fullmatch(body)
        if prompt:
            found.append(Command(prompt.group(1), prompt.group(2), number))
        elif found and isinstance(found[-1], Command):
            found[-1].text += "\n" + body
        else:
            raise ValueError(f"quickstart.rst line {number}: a code-block line with no master#/slave# prompt")
    return found


def substitute(text: str, addresses: dict[str, str]) -> str:
    """Replace the page's addresses (whole addresses only) by the rig's: ``{"10.0.0.1": "10.203.13.2", ...}``."""
    pattern = re.compile(r"(?<![\d.])(" + "|".join(re.escape(a) for a in addresses) + r")(?![\d])")
    return pattern.sub(lambda match: addresses[match.group(1)], text)
