"""The README is a door and the docs are whole: the configuration page is made from the settings classes, every
`make` target named exists, every relative link leads somewhere, and nothing points outside the repository."""

import re
from pathlib import Path

from maille_devstack.configdoc import config_tables, settings_classes
from maille_kit.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[1]
CONFIGURATION = ROOT / "docs" / "configuration.md"
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_config_tables_match_settings() -> None:
    documented = re.search(r"<!-- config:begin -->\n(.*)\n<!-- config:end -->", CONFIGURATION.read_text(), re.S)
    assert documented, "docs/configuration.md lost its configuration markers"
    assert documented.group(1).strip() == config_tables().strip(), (
        "run `.venv/bin/maille-devstack config-table --write`"
    )


def test_every_variable_is_documented() -> None:
    page = CONFIGURATION.read_text()
    common = set(ServiceSettings.model_fields)
    for cls in settings_classes():
        for field in cls.model_fields:
            name = f"MAILLE_<SERVICE>_{field.upper()}" if field in common else cls.env_name(field)
            assert f"`{name}`" in page, name


def test_commands_named_are_make_targets() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for page in PAGES:
        for target in re.findall(r"`make (\w[\w-]*)`", page.read_text()):
            assert re.search(rf"^{target}:", makefile, re.M), (page.name, target)


def test_links_lead_somewhere_inside_the_repository() -> None:
    for page in PAGES:
        text = page.read_text()
        assert "../shared" not in text, f"{page.relative_to(ROOT)} points outside the repository"
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if not target.startswith(("http://", "https://", "mailto:")):
                assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links {target}, which is not there"


def test_the_readme_is_a_door() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200
