"""Write the values table of charts/die-hard/README.md from the comments in values.yaml.

    python -m scripts.chart_docs      (`make chart-docs`)

Every key of values.yaml has a `# -- description` comment above it; a key whose children have
none is documented as one value (its default shown whole). tests/deploy/test_chart.py fails when
the README's table is not what this script writes.
"""

import json
import re
from dataclasses import dataclass

import yaml

from app.config.env import PROJECT_ROOT

CHART = PROJECT_ROOT / "charts" / "die-hard"
START, END = "<!-- values:start -->", "<!-- values:end -->"
_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_.-]*):(?:\s|$)")


@dataclass(frozen=True)
class ValueKey:
    path: tuple[str, ...]
    description: str  # empty when the key has no comment


def values_keys(text: str) -> list[ValueKey]:
    """Every mapping key of values.yaml outside lists, with the comment block above it."""
    keys: list[ValueKey] = []
    parents: list[tuple[int, str]] = []
    comment: list[str] = []
    list_indent: int | None = None  # inside a list item: its keys are not documented one by one
    for line in text.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip(" "))
        if not stripped:
            comment = []
            continue
        if list_indent is not None and indent > list_indent:
            continue
        list_indent = None
        if stripped.startswith("#"):
            comment.append(re.sub(r"^#( --)? ?", "", stripped))
            continue
        if stripped.startswith("- "):
            list_indent = indent
            comment = []
            continue
        match = _KEY.match(line)
        if not match:
            comment = []
            continue
        while parents and parents[-1][0] >= indent:
            parents.pop()
        path = (*(key for _, key in parents), match["key"])
        keys.append(ValueKey(path, " ".join(comment)))
        parents.append((indent, match["key"]))
        comment = []
    return keys


def _value(values: dict, path: tuple[str, ...]):
    for key in path:
        values = values[key]
    return values


def _type(value) -> str:
    if value is None:
        return "null"
    return {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "object"}[
        type(value)
    ]


def values_table(text: str) -> str:
    values = yaml.safe_load(text)
    keys = values_keys(text)
    documented_groups = {
        key.path[:-1] for key in keys if key.description and len(key.path) > 1
    }  # a key with documented children is a group: its children get the rows
    rows = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    covered: list[tuple[str, ...]] = []
    for key in keys:
        if any(key.path[: len(leaf)] == leaf for leaf in covered):
            continue  # inside a value documented as a whole
        value = _value(values, key.path)
        if key.path in documented_groups:
            continue
        covered.append(key.path)
        default = json.dumps(value, separators=(", ", ": ")).replace("|", "\\|")
        description = key.description.replace("|", "\\|")
        rows.append(f"| `{'.'.join(key.path)}` | {_type(value)} | `{default}` | {description} |")
    return "\n".join(rows)


def readme_with_table(readme: str, table: str) -> str:
    before, rest = readme.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n{table}\n{END}{after}"


def main() -> None:
    readme = CHART / "README.md"
    table = values_table((CHART / "values.yaml").read_text())
    readme.write_text(readme_with_table(readme.read_text(), table))
    print(f"{readme.relative_to(CHART.parent.parent)}: values table written")  # noqa: T201


if __name__ == "__main__":
    main()
