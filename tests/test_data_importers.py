"""Importers: X API v2 responses and mapped CSV, on hand-made fixtures."""

from __future__ import annotations

import json

import pytest

from replyrl.data.importers import import_csv, import_xapi, parse_mapping
from replyrl.records import DataError


def xapi_response():
    return {
        "data": [
            {
                "id": "101",
                "text": "Great thread, what about caching?",
                "author_id": "u2",
                "conversation_id": "100",
                "created_at": "2026-01-01T12:05:00.000Z",
                "referenced_tweets": [{"type": "replied_to", "id": "100"}],
                "public_metrics": {
                    "like_count": 7,
                    "retweet_count": 1,
                    "reply_count": 0,
                    "quote_count": 0,
                },
            },
            {
                "id": "102",
                "text": "nice",
                "author_id": "u3",
                "conversation_id": "100",
                "created_at": "2026-01-01T13:00:00.000Z",
                "referenced_tweets": [
                    {"type": "quoted", "id": "5"},
                    {"type": "replied_to", "id": "100"},
                ],
                "public_metrics": {
                    "like_count": 0,
                    "retweet_count": 0,
                    "reply_count": 0,
                    "quote_count": 0,
                },
            },
            {
                "id": "103",
                "text": "orphan reply",
                "author_id": "u3",
                "created_at": "2026-01-01T13:00:00.000Z",
                "referenced_tweets": [{"type": "replied_to", "id": "999"}],
                "public_metrics": {"like_count": 2, "retweet_count": 0},
            },
            {
                "id": "104",
                "text": "a standalone tweet",
                "author_id": "u1",
                "public_metrics": {"like_count": 2, "retweet_count": 0},
            },
        ],
        "includes": {
            "users": [
                {"id": "u1", "username": "alice", "public_metrics": {"followers_count": 5000}},
                {"id": "u2", "username": "bob", "public_metrics": {"followers_count": 12}},
                {"id": "u3", "username": "carol"},
            ],
            "tweets": [
                {
                    "id": "100",
                    "text": "How I sped up our API by 10x",
                    "author_id": "u1",
                    "created_at": "2026-01-01T12:00:00.000Z",
                    "public_metrics": {"like_count": 340, "retweet_count": 20},
                }
            ],
        },
        "meta": {"result_count": 4},
    }


def test_xapi_single_response(tmp_path):
    p = tmp_path / "x.json"
    p.write_text(json.dumps(xapi_response()))
    out = import_xapi(p)
    recs = out.result.records
    assert [r.reply_id for r in recs] == ["101", "102"]
    a, b = recs
    assert (a.tweet_id, a.tweet, a.reply) == (
        "100",
        "How I sped up our API by 10x",
        "Great thread, what about caching?",
    )
    assert (a.reply_likes, a.reply_retweets, a.tweet_likes) == (7, 1, 340)
    assert a.reply_author_followers == 12 and a.reply_author == "bob" and a.tweet_author == "alice"
    assert a.reply_time_diff_seconds == 300.0 and b.reply_time_diff_seconds == 3600.0
    assert b.reply_author_followers is None  # carol has no public_metrics
    assert a.extra["source"] == "x-api-v2" and a.extra["conversation_id"] == "100"
    assert a.extra["reply_reply_count"] == 0
    assert out.skipped == {
        "parent tweet not in file": 1,
        "not a reply (no replied_to reference)": 1,
    }


def test_xapi_list_and_jsonl_and_parent_in_other_response(tmp_path):
    r1 = xapi_response()
    parent = r1["includes"].pop("tweets")
    r2 = {"data": parent, "includes": {"users": r1["includes"]["users"]}}
    lst = tmp_path / "list.json"
    lst.write_text(json.dumps([r1, r2]))
    jl = tmp_path / "resp.jsonl"
    jl.write_text(json.dumps(r1) + "\n\n" + json.dumps(r2) + "\n")
    a = import_xapi(lst).result.records
    b = import_xapi(jl).result.records
    assert [r.reply_id for r in a] == [r.reply_id for r in b] == ["101", "102"]
    assert a[0].tweet_likes == 340


def test_xapi_errors_name_response_and_field(tmp_path):
    bad = xapi_response()
    bad["data"][0]["public_metrics"]["like_count"] = -3
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps({"data": "oops"}) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataError) as e:
        import_xapi(p)
    got = [(x.line, x.field) for x in e.value.errors]
    assert got == [(1, "data")]
    out = import_xapi(p, skip_invalid=True)
    assert [(x.line, x.field) for x in out.result.errors] == [(1, "data"), (2, "reply_likes")]
    assert [r.reply_id for r in out.result.records] == ["102"]
    (tmp_path / "broken.jsonl").write_text('{"data": []}\n{nope\n')
    with pytest.raises(DataError, match=r"broken.jsonl:2"):
        import_xapi(tmp_path / "broken.jsonl")


def test_csv_with_mapping(tmp_path):
    p = tmp_path / "export.csv"
    p.write_text(
        "post_id,post,comment,likes,post_likes,lang\n"
        "p1,Hello world,Hi there,3,10,en\n"
        'p1,Hello world,"multi\nline reply",0,10,en\n'
        "p2,Second,Bye,x,4,en\n"
    )
    mapping = parse_mapping(
        [
            "post_id=tweet_id",
            "post=tweet",
            "comment=reply",
            "likes=reply_likes",
            "post_likes=tweet_likes",
        ]
    )
    with pytest.raises(DataError) as e:
        import_csv(p, mapping)
    assert [(x.line, x.field, x.value) for x in e.value.errors] == [(5, "reply_likes", "x")]
    out = import_csv(p, mapping, skip_invalid=True)
    recs = out.result.records
    assert [(r.tweet_id, r.reply, r.reply_likes, r.tweet_likes) for r in recs] == [
        ("p1", "Hi there", 3, 10),
        ("p1", "multi\nline reply", 0, 10),
    ]
    assert recs[0].extra == {"lang": "en"}


def test_csv_mapping_errors(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="did you mean 'reply_likes'"):
        import_csv(p, {"a": "reply_like"})
    with pytest.raises(DataError, match="mapped column not in the CSV header"):
        import_csv(p, {"zzz": "reply"})
    with pytest.raises(ValueError, match="source_column=field"):
        parse_mapping(["likes"])
