"""A service's migration steps run once each, in order, and again from the start if one was interrupted."""

import pytest

from maille_kit.docstore import Docstore
from maille_kit.migrations import Migration, migrate


async def test_steps_run_once_in_order_and_an_interrupted_one_runs_again(docstore: Docstore) -> None:
    ran: list[int] = []
    broken = True

    async def step(version: int) -> None:
        if version == 3 and broken:
            raise RuntimeError("the docstore went away")
        ran.append(version)
        await docstore.db.people.update_many({}, {"$set": {f"v{version}": True}})

    def numbered(version: int) -> Migration:
        async def apply(_: Docstore) -> None:
            await step(version)

        return Migration(version, f"step {version}", apply)

    await docstore.db.people.insert_one({"_id": "ana"})
    steps = [numbered(3), numbered(1), numbered(2)]
    with pytest.raises(RuntimeError):
        await migrate(docstore, steps)
    assert ran == [1, 2]  # in order, up to the one that failed
    broken = False
    assert await migrate(docstore, steps) == [3]  # the failed one again, the others not
    assert await migrate(docstore, steps) == []
    assert ran == [1, 2, 3]
    assert await docstore.db.people.find_one({"_id": "ana"}) == {"_id": "ana", "v1": True, "v2": True, "v3": True}
    with pytest.raises(ValueError, match="share a version"):
        await migrate(docstore, [numbered(4), numbered(4)])
