"""The image's entry point: run the deployable the image was built for (`MAILLE_DEPLOYABLE`), listening on
0.0.0.0:8080 and reporting the image's build unless its own variables say otherwise."""

from __future__ import annotations

import os
import runpy
import sys

DEPLOYABLES = ("gateway", "identity", "catalog", "messaging", "library", "timeline", "support", "observatory")


def main() -> None:
    name = os.environ.get("MAILLE_DEPLOYABLE", "")
    if name not in DEPLOYABLES:
        sys.exit(
            f"MAILLE_DEPLOYABLE is {name!r}: it must be one of {', '.join(DEPLOYABLES)} (the image's build argument)"
        )
    prefix = f"MAILLE_{name.upper()}_"
    os.environ.setdefault(f"{prefix}HTTP_HOST", "0.0.0.0")
    os.environ.setdefault(f"{prefix}HTTP_PORT", "8080")
    os.environ.setdefault(f"{prefix}BUILD", os.environ.get("MAILLE_BUILD", "dev"))
    runpy.run_module(f"maille_{name}", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
