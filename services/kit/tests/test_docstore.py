"""The docstore's set-up on the real docstore: indexes declared again at every start change nothing."""

from pymongo import IndexModel

from maille_kit.docstore import Docstore


async def test_indexes_declared_again_at_a_restart_are_left_as_they_are(docstore: Docstore) -> None:
    # FerretDB v1 drops the connection when asked to create several indexes some of which exist: a service
    # restarting on its database must not trip over its own indexes.
    models = [IndexModel([("a", 1)]), IndexModel([("b", 1), ("c", 1)]), IndexModel([("d", 1)])]
    await docstore.ensure_indexes({"things": models[:2]})
    await docstore.ensure_indexes({"things": models})
    await docstore.ensure_indexes({"things": models})
    names = {index["name"] async for index in await docstore.db["things"].list_indexes()}
    assert {"a_1", "b_1_c_1", "d_1"} <= names
    assert await docstore.db["things"].insert_one({"a": 1}) is not None  # the connection still serves
