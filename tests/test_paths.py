"""Input/output overlap is refused after resolving paths; URL credentials are hidden."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, strategies as st

from distsmote.paths import UnsafePathsError, check_distinct, overlap, redact

segment = st.text(alphabet="abcxyz0_-.", min_size=1, max_size=6).filter(lambda s: s not in (".", ".."))
keys = st.lists(segment, min_size=1, max_size=4).map("/".join)
schemes = st.sampled_from(["s3", "s3a", "s3n"])


@given(base=keys, sub=keys, s1=schemes, s2=schemes, slash=st.booleans())
def test_s3_family_prefixes(base, sub, s1, s2, slash):
    tail = "/" if slash else ""
    assert overlap(f"{s1}://bucket/{base}", f"{s2}://bucket/{base}{tail}") == "equals"
    assert overlap(f"{s1}://bucket/{base}", f"{s2}://bucket/{base}/{sub}{tail}") == "inside"
    assert overlap(f"{s1}://bucket/{base}/{sub}", f"{s2}://bucket/{base}{tail}") == "contains"
    assert overlap(f"{s1}://bucket/{base}", f"{s2}://other/{base}") is None
    assert overlap(f"{s1}://bucket/{base}", f"{s2}://bucket/{base}x") is None  # a sibling prefix


@given(a=keys, b=keys)
def test_overlap_is_prefix_relation(a, b):
    def norm(k):
        return os.path.normpath("/" + k)

    na, nb = norm(a), norm(b)
    got = overlap(f"s3://b/{a}", f"s3://b/{b}")
    if na == nb:
        assert got == "equals"
    elif nb.startswith(na + "/"):
        assert got == "inside"
    elif na.startswith(nb + "/"):
        assert got == "contains"
    else:
        assert got is None


def test_local_forms(tmp_path, monkeypatch):
    data = tmp_path / "p" / "data"
    data.mkdir(parents=True)
    (data / "good.parquet").write_bytes(b"x")
    link = tmp_path / "link"
    link.symlink_to(data)
    monkeypatch.chdir(tmp_path)
    src = str(data / "good.parquet")
    assert overlap(src, str(tmp_path / "p")) == "contains"
    assert overlap(src, "p/") == "contains"
    assert overlap(src, f"file://{tmp_path}/p/data/") == "contains"
    assert overlap("p/data/good.parquet", str(link / "good.parquet")) == "equals"
    assert overlap(str(data), str(link / "balanced")) == "inside"
    assert overlap(str(data), "./p//data/../data/balanced") == "inside"
    assert overlap(str(data), str(tmp_path / "p" / "data2")) is None
    assert overlap("memory://lake/train", "memory:///lake/train/") == "equals"
    assert overlap("memory://lake/train", str(tmp_path / "lake" / "train")) is None


def test_literal_dotdot_keys_are_compared_both_ways():
    # object stores take "a/../x" literally: it is inside "a", and normalises to "x"
    assert overlap("s3://b/a/../x", "s3://b/a") == "contains"
    assert overlap("s3://b/x", "s3://b/a/../x") == "equals"


def test_hdfs_default_namenode_matches_any():
    assert overlap("hdfs:///data/in", "hdfs://nn:8020/data/in/out") == "inside"
    assert overlap("hdfs://nn1/data/in", "hdfs://nn2/data/in") is None


def test_check_distinct_messages_hide_credentials():
    with pytest.raises(UnsafePathsError, match="contains the input") as err:
        check_distinct("s3://AKIA:s3cr3t@bucket/p/data/good.parquet", "s3a://AKIA:s3cr3t@bucket/p")
    assert "s3cr3t" not in str(err.value) and "AKIA" not in str(err.value)
    with pytest.raises(UnsafePathsError, match="root of a filesystem or bucket"):
        check_distinct("s3://bucket/in", "s3://bucket/")
    check_distinct("s3://bucket/in", "s3://bucket/out")


def test_redact():
    assert redact("s3://KEY:SECRET@bucket/x") == "s3://***@bucket/x"
    assert redact("read 'abfs://c@acct/x?sv=1&sig=abc' failed") == "read 'abfs://c@acct/x?sv=***&sig=***' failed"
    assert redact("memory://u:p@lake/train at 09:00") == "memory://***@lake/train at 09:00"
    assert redact("plain /tmp/a@b path") == "plain /tmp/a@b path"
