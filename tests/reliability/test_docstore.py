"""The docstore (FerretDB v1 on SQLite, patched in tools/docstore/patches) under the writes that froze it.

An AAF import sent one `update` command of hundreds of statements: each statement's query kept its rows,
and so one of the 100 pooled SQLite connections, open until the whole command ended — the 101st statement
waited for a connection forever, and with it every client of that database. These tests fail (time out)
on the unpatched docstore.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from pymongo import AsyncMongoClient, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from maille_devstack.processes import DocstoreServer

DEADLINE = 60


@pytest.fixture
async def collection(docstore_server: DocstoreServer) -> AsyncIterator[AsyncCollection]:
    client: AsyncMongoClient = AsyncMongoClient(docstore_server.url, maxPoolSize=300, timeoutMS=DEADLINE * 1000)
    database = f"test_{uuid.uuid4().hex[:12]}"
    yield client[database]["things"]
    await client.drop_database(database)
    await client.close()


async def test_one_update_command_of_many_matching_statements_finishes(collection: AsyncCollection) -> None:
    await collection.insert_many([{"_id": n, "seen": False} for n in range(300)])

    result = await asyncio.wait_for(
        collection.bulk_write([UpdateOne({"_id": n}, {"$set": {"seen": True}}) for n in range(300)]), DEADLINE
    )

    assert result.modified_count == 300
    assert await collection.count_documents({"seen": True}) == 300
    # and the store still answers others
    assert await asyncio.wait_for(collection.find_one({"_id": 7}), 10) == {"_id": 7, "seen": True}


async def test_concurrent_increments_are_all_counted(collection: AsyncCollection) -> None:
    await collection.insert_many([{"_id": n, "count": 0} for n in range(10)])

    async def bump(n: int) -> None:
        if n % 2:
            await collection.update_one({"_id": n % 10}, {"$inc": {"count": 1}})
        else:
            await collection.find_one_and_update(
                {"_id": n % 10}, {"$inc": {"count": 1}}, return_document=ReturnDocument.AFTER
            )

    await asyncio.wait_for(asyncio.gather(*(bump(n) for n in range(400))), DEADLINE)

    counts = [doc["count"] async for doc in collection.find({}, sort=[("_id", 1)])]
    assert counts == [40] * 10


async def test_concurrent_upserts_of_one_key_make_one_document(collection: AsyncCollection) -> None:
    await asyncio.wait_for(
        asyncio.gather(*(collection.update_one({"key": "k"}, {"$inc": {"n": 1}}, upsert=True) for _ in range(150))),
        DEADLINE,
    )

    documents = await collection.find({"key": "k"}).to_list()
    assert [doc["n"] for doc in documents] == [150]


async def test_a_lookup_by_keys_reads_only_those_keys_and_still_filters(collection: AsyncCollection) -> None:
    """`_id $in` and `_id` beside other fields are narrowed by the `_id` index (the released FerretDB v1 read the
    whole collection for both: a parent's /me took 10 s while an import ran); what the rest of the filter says
    still holds."""
    await collection.insert_many(
        [{"_id": f"p{n:05}", "n": n, "kind": "pupil" if n % 2 else "parent"} for n in range(2000)]
    )
    keys = [f"p{n:05}" for n in range(0, 2000, 7)]

    async def plan(filter_: dict) -> dict:
        return await collection.database.command("explain", {"find": collection.name, "filter": filter_})

    assert (await plan({"_id": {"$in": keys}}))["filterPushdown"] is True
    assert (await plan({"_id": {"$in": [*keys, 42]}}))["filterPushdown"] is False  # a key of another type: read whole
    assert sorted([doc["_id"] async for doc in collection.find({"_id": {"$in": keys}})]) == keys
    assert await collection.count_documents({"_id": {"$in": keys}, "kind": "pupil"}) == len(
        [k for k in keys if int(k[1:]) % 2]
    )
    # `_id` beside another field: narrowed by the key, then the other field checked
    assert await collection.find_one({"_id": "p00003", "kind": "parent"}) is None
    assert (await collection.find_one({"_id": "p00003", "kind": "pupil"}))["n"] == 3
    # keys of other types are not narrowed, and still found
    await collection.insert_one({"_id": 42, "n": -1})
    assert sorted([doc["n"] async for doc in collection.find({"_id": {"$in": [42, "p00001"]}})]) == [-1, 1]
    # an update and a delete by keys touch those keys only
    assert (await collection.update_many({"_id": {"$in": keys[:10]}}, {"$set": {"seen": True}})).modified_count == 10
    assert await collection.count_documents({"seen": True}) == 10
    assert (await collection.delete_many({"_id": {"$in": keys[:5]}, "kind": "parent"})).deleted_count == len(
        [k for k in keys[:5] if int(k[1:]) % 2 == 0]
    )


async def test_replacing_by_id_keeps_what_mongodb_says_of_a_replacement(collection: AsyncCollection) -> None:
    """A replacement by `_id` alone skips reading the stored document (tools/docstore/patches): what a client sees
    stays a replacement's — upserted, replaced whole, missing, `_id` immutable, in order with other statements."""
    from bson import ObjectId
    from pymongo import ReplaceOne
    from pymongo.errors import WriteError

    made = await collection.replace_one({"_id": "a"}, {"x": 1, "kept": True}, upsert=True)
    assert (made.matched_count, made.upserted_id) == (0, "a")
    replaced = await collection.replace_one({"_id": "a"}, {"x": 2, "y": [1, 2]}, upsert=True)
    assert (replaced.matched_count, replaced.modified_count, replaced.upserted_id) == (1, 1, None)
    assert await collection.find_one({"_id": "a"}) == {"_id": "a", "x": 2, "y": [1, 2]}  # whole: "kept" is gone
    missing = await collection.replace_one({"_id": "nobody"}, {"x": 3})
    assert missing.matched_count == 0 and await collection.find_one({"_id": "nobody"}) is None
    oid = ObjectId()
    await collection.insert_one({"_id": oid, "k": 1})
    assert (await collection.replace_one({"_id": oid}, {"_id": oid, "k": 2})).matched_count == 1
    assert (await collection.find_one({"_id": oid}))["k"] == 2
    with pytest.raises(WriteError, match="immutable field '_id'"):
        await collection.replace_one({"_id": "a"}, {"_id": "b", "x": 4})
    assert await collection.find_one({"_id": "b"}) is None
    # Replacements and an operator on one document, in one command: applied in order.
    result = await collection.bulk_write(
        [ReplaceOne({"_id": f"p{n}"}, {"n": n}, upsert=True) for n in range(3)]
        + [ReplaceOne({"_id": "p1"}, {"n": 100}), UpdateOne({"_id": "p1"}, {"$inc": {"n": 1}})]
    )
    assert result.upserted_count == 3 and (await collection.find_one({"_id": "p1"}))["n"] == 101
    # A filter of more than the `_id` still reads and compares (a guarded replacement).
    guarded = await collection.replace_one({"_id": "p2", "n": 99}, {"n": 7})
    assert guarded.matched_count == 0 and (await collection.find_one({"_id": "p2"}))["n"] == 2


async def test_a_command_of_replacements_finds_what_it_replaces_together(collection: AsyncCollection) -> None:
    """A command whose every statement replaces a document by its `_id` looks them all up in one query
    (tools/docstore/patches/update-with-known-ids.patch): what is there is replaced, what is not is upserted or left,
    whatever the ids are made of — and a command naming one `_id` twice still sees its own first write."""
    from bson import ObjectId
    from pymongo import ReplaceOne

    oid = ObjectId()
    odd = ['quote " and \\ backslash', "<tag>&amp;", "é\u00e8\u4e2d", "a\nline"]
    await collection.insert_many([{"_id": i, "v": 0} for i in [*odd[:2], "there", oid]])
    result = await collection.bulk_write(
        [ReplaceOne({"_id": i}, {"v": 1}, upsert=True) for i in [*odd, "there", "new", oid]]
        + [ReplaceOne({"_id": "absent"}, {"v": 1})],
        ordered=False,
    )
    assert (result.matched_count, result.upserted_count) == (4, 3)
    assert sorted(map(str, result.upserted_ids.values())) == sorted([odd[2], odd[3], "new"])
    assert {str(d["_id"]): d["v"] async for d in collection.find({})} == {
        **{i: 1 for i in odd},
        "there": 1,
        "new": 1,
        str(oid): 1,
    }
    assert await collection.find_one({"_id": "absent"}) is None
    twice = await collection.bulk_write(
        [ReplaceOne({"_id": "fresh"}, {"v": 1}, upsert=True), ReplaceOne({"_id": "fresh"}, {"v": 2}, upsert=True)]
    )
    assert (twice.matched_count, twice.upserted_count) == (1, 1)
    assert (await collection.find_one({"_id": "fresh"}))["v"] == 2
