"""Write docs/configuration.md from the settings declarations (one source of truth).

    python -m scripts.config_docs            (`make config-docs`)
    python -m scripts.config_docs --check    exit 1 when the page is out of date

Every environment variable is read in app/config/env.py or a block of app/config/blocks/ with
`env.<type>("NAME", default=...)` or `env_required_in_production("NAME", ...)`, under a comment
that says what it means. The table shows the variable, its type, its default and that comment;
a comment sentence starting with `Default:` replaces a default that is not a plain literal.
tests/config/test_config_docs.py fails when docs/configuration.md is not what this writes.
"""

import ast
import io
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

from app.config.env import PROJECT_ROOT

CONFIG = PROJECT_ROOT / "app" / "config"
DOCUMENT = PROJECT_ROOT / "docs" / "configuration.md"
# The blocks in the order a reader meets them.
SOURCES = [
    CONFIG / "env.py",
    *(
        CONFIG / "blocks" / f"{name}.py"
        for name in (
            "django",
            "api",
            "security",
            "clickhouse",
            "outbox",
            "celery",
            "web",
            "probes",
            "metrics",
            "logging",
            "sentry",
        )
    ),
]
_TYPES = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "list": "list",
    "path": "path",
    "db_url": "URL",
}
_INTRODUCTION = """\
# Configuration

Every setting comes from the environment, read in `app/config/` through one
[django-environ](https://django-environ.readthedocs.io/) object (`app/config/env.py`). A `.env`
file in the project root is read when present; real environment variables win over it. A
variable set to an empty string counts as unset. With `DEBUG=true` development defaults apply;
with `DEBUG=false` every variable marked *required in production* must be set, and a missing,
unparsable or weak value stops the process at start with a message naming the variable.

This page is generated from the declarations by `make config-docs`; a test fails when it is
out of date.
"""


@dataclass(frozen=True)
class Variable:
    name: str
    type: str
    default: str
    meaning: str


def _comments_by_line(source: str) -> dict[int, str]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {
        token.start[0]: token.string.lstrip("#").strip()
        for token in tokens
        if token.type == tokenize.COMMENT
    }


def _comment_above(line: int, comments: dict[int, str], lines: list[str]) -> str:
    block: list[str] = []
    line -= 1
    while line >= 1 and lines[line - 1].strip().startswith("#"):
        block.insert(0, comments[line])
        line -= 1
    return " ".join(part for part in block if not part.startswith("noqa"))


_CONSTANT_NODES = (
    ast.Constant,
    ast.BinOp,
    ast.UnaryOp,
    ast.List,
    ast.Tuple,
    ast.operator,
    ast.unaryop,
    ast.Load,
)


def _literal(node: ast.expr) -> str | None:
    """The value of a literal or constant arithmetic (`64 * 1024`), else None."""
    if not all(isinstance(part, _CONSTANT_NODES) for part in ast.walk(node)):
        return None
    value = eval(compile(ast.Expression(node), "<default>", "eval"), {"__builtins__": {}})  # noqa: S307
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list) and value:
        return f"`{','.join(map(str, value))}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`" if value not in ("", [], ()) else "empty"


def _split_default(meaning: str) -> tuple[str, str | None]:
    """(meaning, default) where the comment holds a `Default: ...` sentence."""
    marker = meaning.find("Default:")
    if marker < 0:
        return meaning, None
    return meaning[:marker].strip(), meaning[marker + len("Default:") :].strip().rstrip(".")


def _read_call(call: ast.Call) -> tuple[str, str, ast.expr | None, bool] | None:
    """(name, type, default expression, required in production) of a variable read."""
    func = call.func
    if not call.args or not isinstance(call.args[0], ast.Constant):
        return None
    name = call.args[0].value
    if not isinstance(name, str) or not name.isupper():
        return None
    keywords = {keyword.arg: keyword.value for keyword in call.keywords}
    if isinstance(func, ast.Name) and func.id == "env_required_in_production":
        cast = keywords.get("cast")
        kind = cast.id if isinstance(cast, ast.Name) else "str"
        return name, _TYPES[kind], keywords.get("development_default"), True
    if (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == "env"
        and func.attr in _TYPES
    ):
        default = keywords.get("default", call.args[1] if len(call.args) > 1 else None)
        return name, _TYPES[func.attr], default, False
    return None


def variables_in(path: Path) -> list[Variable]:
    source = path.read_text()
    lines = source.splitlines()
    comments = _comments_by_line(source)
    found: list[Variable] = []
    statements = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.stmt)]
    # Innermost statements first: a read belongs to the statement just around it.
    statements.sort(key=lambda node: (node.end_lineno or 0) - node.lineno)
    seen: set[int] = set()
    for statement in statements:
        for node in ast.walk(statement):
            if not isinstance(node, ast.Call) or id(node) in seen:
                continue
            seen.add(id(node))
            read = _read_call(node)
            if read is None:
                continue
            name, kind, default_node, required = read
            meaning, stated_default = _split_default(
                _comment_above(statement.lineno, comments, lines)
            )
            if not meaning:
                raise SystemExit(f"{path.name}: {name} has no comment above its declaration")
            default = stated_default or (_literal(default_node) if default_node else None)
            if default is None:
                raise SystemExit(
                    f"{path.name}: the default of {name} is not a literal; "
                    "say it in a `Default: ...` sentence of its comment"
                )
            if required:
                default = f"required in production (development: {default})"
            found.append(Variable(name, kind, default, meaning))
    return sorted(found, key=lambda variable: lines_index(lines, variable.name))


def lines_index(lines: list[str], name: str) -> int:
    return next(index for index, line in enumerate(lines) if f'"{name}"' in line)


def _title(path: Path) -> str:
    docstring = ast.get_docstring(ast.parse(path.read_text())) or path.stem
    return docstring.splitlines()[0].rstrip(".")


def configuration_document() -> str:
    parts = [_INTRODUCTION]
    for path in SOURCES:
        variables = variables_in(path)
        if not variables:
            continue
        parts.append(f"\n## {_title(path)}\n\n_(`{path.relative_to(PROJECT_ROOT)}`)_\n\n")
        parts.append("| variable | type | default | meaning |\n|---|---|---|---|\n")
        for variable in variables:
            meaning = variable.meaning.replace("|", "\\|")
            parts.append(
                f"| `{variable.name}` | {variable.type} | {variable.default} | {meaning} |\n"
            )
    return "".join(parts)


def main(argv: list[str]) -> int:
    document = configuration_document()
    name = DOCUMENT.relative_to(PROJECT_ROOT)
    if argv == ["--check"]:
        if DOCUMENT.is_file() and DOCUMENT.read_text() == document:
            return 0
        sys.stderr.write(f"{name} is out of date: run `make config-docs`\n")
        return 1
    DOCUMENT.parent.mkdir(exist_ok=True)
    DOCUMENT.write_text(document)
    sys.stdout.write(f"{name}: written\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
