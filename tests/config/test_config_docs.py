"""docs/configuration.md is generated from the settings declarations and kept current, and it
names every variable the product reads."""

import re

from app.config.env import PROJECT_ROOT
from scripts.config_docs import DOCUMENT, SOURCES, configuration_document, variables_in

# A read of an environment variable anywhere in the product: through `env` or a raw read.
_ENV_READ = re.compile(
    r"""\b(?:env\.[a-z_]+|env_required_in_production|os\.environ\.get|os\.getenv)\(\s*"""
    r"""["']([A-Z][A-Z0-9_]*)["']"""
)


def _documented() -> set[str]:
    return {variable.name for path in SOURCES for variable in variables_in(path)}


def test_the_configuration_page_is_what_the_declarations_generate():
    assert DOCUMENT.read_text() == configuration_document(), "run `make config-docs`"


def test_every_variable_the_product_reads_is_declared_in_the_settings():
    read = set()
    for path in (PROJECT_ROOT / "app").rglob("*.py"):
        read |= set(_ENV_READ.findall(path.read_text()))

    assert read - _documented() == set()


def test_env_example_names_only_declared_variables():
    names = {
        line.split("=", 1)[0].lstrip("# ").strip()
        for line in (PROJECT_ROOT / ".env.example").read_text().splitlines()
        if re.match(r"#? ?[A-Z][A-Z0-9_]*=", line)
    }

    assert names
    assert names - _documented() == set()
