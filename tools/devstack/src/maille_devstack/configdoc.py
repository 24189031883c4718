"""docs/configuration.md's tables, made from the settings classes themselves."""

from __future__ import annotations

import re
from pathlib import Path

from maille_kit.settings import ServiceSettings, describe


def settings_classes() -> list[type[ServiceSettings]]:
    """The settings class of every deployable."""
    from maille_catalog.settings import CatalogSettings
    from maille_gateway.settings import GatewaySettings
    from maille_identity.settings import IdentitySettings
    from maille_library.settings import LibrarySettings
    from maille_messaging.settings import MessagingSettings
    from maille_observatory.settings import ObservatorySettings
    from maille_support.settings import SupportSettings
    from maille_timeline.settings import TimelineSettings

    return [
        GatewaySettings,
        IdentitySettings,
        CatalogSettings,
        MessagingSettings,
        LibrarySettings,
        TimelineSettings,
        SupportSettings,
        ObservatorySettings,
    ]


def _cell(value: object) -> str:
    if value is None or value == "":
        return "—"
    text = str(value).replace("|", "\\|")
    return f"`{text}`"


def config_tables() -> str:
    """Markdown: the variables every service has, then each service's own."""
    common = {row["field"]: row for row in describe(ServiceSettings)}
    out = [
        "Every deployable reads these, with its own prefix (`MAILLE_GATEWAY_`, `MAILLE_IDENTITY_`, `MAILLE_CATALOG_`, "
        "`MAILLE_MESSAGING_`, `MAILLE_LIBRARY_`, `MAILLE_TIMELINE_`, `MAILLE_SUPPORT_`):",
        "",
        "| variable | default | what |",
        "|---|---|---|",
    ]
    for field, row in common.items():
        out.append(f"| `MAILLE_<SERVICE>_{field.upper()}` | {_cell(row['default'])} | {row['description']} |")
    for cls in settings_classes():
        own = [
            row
            for row in describe(cls)
            if row["field"] not in common or row["default"] != common[row["field"]]["default"]
        ]
        out += ["", f"{cls.service_name}:", "", "| variable | default | what |", "|---|---|---|"]
        out += [f"| `{row['env']}` | {_cell(row['default'])} | {row['description']} |" for row in own]
    return "\n".join(out)


def write_config_page(page: Path | None = None) -> Path:
    """Put the tables between the page's markers (the repository's docs/configuration.md by default)."""
    page = page or Path(__file__).resolve().parents[4] / "docs" / "configuration.md"
    text = page.read_text()
    new = re.sub(
        r"(<!-- config:begin -->\n).*(\n<!-- config:end -->)",
        lambda m: m.group(1) + config_tables().strip() + m.group(2),
        text,
        flags=re.S,
    )
    page.write_text(new)
    return page
