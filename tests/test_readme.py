"""The README's configuration tables are those of the settings classes, and its commands exist."""

import re
from pathlib import Path

from maille_devstack.configdoc import config_tables, settings_classes
from maille_kit.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[1]


def test_config_tables_match_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = re.search(r"<!-- config:begin -->\n(.*)\n<!-- config:end -->", readme, re.S)
    assert documented, "README lost its configuration markers"
    assert documented.group(1).strip() == config_tables().strip(), "run `.venv/bin/maille-devstack config-table` into the README"


def test_every_variable_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    common = set(ServiceSettings.model_fields)
    for cls in settings_classes():
        for field in cls.model_fields:
            name = f"MAILLE_<SERVICE>_{field.upper()}" if field in common else cls.env_name(field)
            assert f"`{name}`" in readme, name


def test_readme_commands_are_make_targets() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in re.findall(r"`make (\w[\w-]*)`", (ROOT / "README.md").read_text()):
        assert re.search(rf"^{target}:", makefile, re.M), target
