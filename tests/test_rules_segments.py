"""Segment sets: exclusive and overlapping memberships, references between segments, cycles, runs."""

from __future__ import annotations

import json

import ibis
import pandas as pd
import pytest
from test_rules_language import AS_OF, hand_features

from custseg.segmenters.rules import (
    DefinitionError,
    RuleError,
    RuleSegmenter,
    SegmentSet,
    load_segment_set,
    run_rules,
    segment_sizes,
)


@pytest.fixture(scope="module")
def con():
    c = ibis.duckdb.connect()
    c.create_table("features", ibis.memtable(hand_features()).mutate(
        recency_days=ibis._.recency_days.cast("int64"), last_order_date=ibis._.last_order_date.cast("date"),
        as_of=ibis._.as_of.cast("date")))
    yield c
    c.disconnect()


def members(con, definition, **kwargs) -> dict[str, list[str]]:
    """customer -> sorted segments."""
    features = con.table("features")
    seg = RuleSegmenter(definition, **kwargs).fit(features, con)
    df = con.execute(seg.assign(features))
    return {c: sorted(g.segment) for c, g in df.groupby("customer_id")}


VALUE = [
    {"name": "Big", "rule": "aov >= 100"},
    {"name": "Frequent", "rule": "orders_count >= 2"},
    {"name": "German", "rule": "lower(country) = 'de'"},
]


def test_exclusive_first_match_wins_with_a_default(con):
    got = members(con, {"name": "v", "mode": "exclusive", "segments": VALUE, "default": "Rest"})
    # A: Big, Frequent, German -> Big; B: none; C: German; D: Frequent; E: Big, Frequent
    assert got == {"A": ["Big"], "B": ["Rest"], "C": ["German"], "D": ["Frequent"], "E": ["Big"]}


def test_exclusive_order_matters(con):
    got = members(con, {"name": "v", "segments": list(reversed(VALUE))})
    assert got == {"A": ["German"], "B": ["Other"], "C": ["German"], "D": ["Frequent"], "E": ["Frequent"]}


def test_overlapping_tags_every_match(con):
    got = members(con, {"name": "v", "mode": "overlapping", "segments": VALUE, "default": "Untagged"})
    assert got == {"A": ["Big", "Frequent", "German"], "B": ["Untagged"], "C": ["German"],
                   "D": ["Frequent"], "E": ["Big", "Frequent"]}


def test_overlapping_without_default_leaves_unmatched_customers_out(con):
    got = members(con, {"name": "v", "mode": "overlapping", "segments": VALUE})
    assert "B" not in got and got["A"] == ["Big", "Frequent", "German"]


def test_segment_references_follow_the_rule_not_the_order(con):
    got = members(con, {"name": "v", "segments": [
        {"name": "Lapsed big", "rule": "segment('Big') and recency_days > 5"},
        {"name": "Big", "rule": "aov >= 100"},
        {"name": "Small", "rule": "not in_segment('Big')"},
    ]})
    # A: big, recency 10 -> Lapsed big; E: big, recency 1 -> Big; C (aov NULL) is 'not Big'.
    assert got == {"A": ["Lapsed big"], "B": ["Small"], "C": ["Small"], "D": ["Small"], "E": ["Big"]}


def test_references_chain(con):
    got = members(con, {"name": "v", "mode": "overlapping", "segments": [
        {"name": "C3", "rule": "segment('C2') and country = 'DE'"},
        {"name": "C2", "rule": "segment('C1') and orders_count > 2"},
        {"name": "C1", "rule": "aov > 10"},
    ]})
    assert got["A"] == ["C1", "C2", "C3"] and got["E"] == ["C1", "C2"] and got["B"] == ["C1"]


@pytest.mark.parametrize(("segments", "message"), [
    ([{"name": "A", "rule": "segment('B')"}, {"name": "B", "rule": "segment('A')"}],
     "segments refer to each other in a cycle: 'A' -> 'B' -> 'A'"),
    ([{"name": "A", "rule": "aov > 1 and segment('A')"}], "cycle: 'A' -> 'A'"),
    ([{"name": "A", "rule": "aov > 1"}, {"name": "B", "rule": "segment('C')"}, {"name": "C", "rule": "segment('D')"},
      {"name": "D", "rule": "segment('B') or segment('A')"}], "cycle: 'B' -> 'C' -> 'D' -> 'B'"),
])
def test_cycles_are_errors(con, segments, message):
    with pytest.raises(DefinitionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RuleSegmenter({"name": "v", "segments": segments}).fit(con.table("features"), con)


def test_unknown_and_default_segment_references(con):
    features = con.table("features")
    with pytest.raises(RuleError) as info:
        RuleSegmenter({"name": "v", "segments": [{"name": "High value", "rule": "aov > 1"},
                                                 {"name": "x", "rule": "segment('High valu')"}]}).fit(features, con)
    assert str(info.value).splitlines()[0] == (
        "segment 'x': unknown segment 'High valu' in this segment set at 1:9, did you mean 'High value'?")
    with pytest.raises(RuleError, match="'Rest' is the default segment"):
        RuleSegmenter({"name": "v", "default": "Rest", "segments": [{"name": "x", "rule": "segment('Rest')"}]}
                      ).fit(features, con)


def test_rule_errors_name_their_segment(con):
    with pytest.raises(RuleError) as info:
        RuleSegmenter({"name": "v", "segments": [{"name": "ok", "rule": "aov > 1"},
                                                 {"name": "High value", "rule": "ordrs_count > 1"}]}
                      ).fit(con.table("features"), con)
    assert str(info.value).splitlines()[0] == (
        "segment 'High value': unknown column 'ordrs_count' at 1:1, did you mean 'orders_count'?")


def test_statistics_are_fitted_once_and_kept(con):
    features = con.table("features")
    seg = RuleSegmenter({"name": "v", "segments": [
        {"name": "Top", "rule": "aov >= p80(aov)"},
        {"name": "Above median", "rule": "aov >= median(aov) and aov < p80(aov)"},
    ]}).fit(features, con)
    assert seg.thresholds_ == pytest.approx({"p80(aov)": 180.0, "median(aov)": 75.0})
    # Assigning other customers uses the fitted thresholds, not theirs.
    others = ibis.memtable(pd.DataFrame({"customer_id": ["X", "Y"], "aov": [150.0, 500.0]}))
    got = con.execute(seg.assign(others)).set_index("customer_id").segment.to_dict()
    assert got == {"X": "Above median", "Y": "Top"}


def test_a_statistic_without_values_is_an_error(con):
    features = con.table("features").mutate(empty=ibis.null("float64"))
    with pytest.raises(ValueError, match=r"p80\(empty\) has no value"):
        RuleSegmenter({"name": "v", "segments": [{"name": "x", "rule": "empty > p80(empty)"}]}).fit(features, con)


def test_today_comes_from_the_features_or_the_parameter(con):
    definition = {"name": "v", "segments": [{"name": "Recent", "rule": "last_order_date >= -30d"}]}
    assert RuleSegmenter(definition).fit(con.table("features"), con).as_of_ == AS_OF
    assert members(con, definition)["D"] == ["Other"]
    assert members(con, definition, as_of="2024-06-01")["D"] == ["Recent"]
    without = con.table("features").drop("as_of")
    with pytest.raises(ValueError, match="no as_of column"):
        RuleSegmenter(definition).fit(without, con)


def test_assign_refuses_an_unfitted_segmenter(con):
    seg = RuleSegmenter({"name": "v", "segments": VALUE})
    with pytest.raises(RuntimeError, match="not fitted"):
        seg.assign(con.table("features"))
    assert seg.get_params() == {"definition": {"name": "v", "segments": VALUE}, "as_of": None}


def test_init_only_stores_its_parameters():
    seg = RuleSegmenter("no/such/file.yaml")  # nothing is read before fit
    assert seg.definition == "no/such/file.yaml"
    with pytest.raises(DefinitionError, match="does not exist"):
        seg.fit(ibis.table({"customer_id": "string"}), None)


# -- definitions ------------------------------------------------------------------------------

def test_yaml_file_round_trip(tmp_path):
    path = tmp_path / "set.yaml"
    path.write_text("""
name: Value tiers
description: by revenue
mode: overlapping
default: {name: Nobody, description: no tag}
segments:
  - name: Big
    description: big spenders
    rule: "aov >= p80(aov)"
  - {name: Frequent, rule: "orders_count >= 2"}
""")
    s = load_segment_set(path)
    assert isinstance(s, SegmentSet) and s.mode == "overlapping" and s.names == ("Big", "Frequent", "Nobody")
    assert load_segment_set(s.to_dict()) == s
    assert s.to_dict()["segments"][0] == {"name": "Big", "description": "big spenders", "rule": "aov >= p80(aov)"}


def test_exclusive_default_is_other():
    s = load_segment_set({"name": "x", "segments": [{"name": "a", "rule": "aov > 1"}]})
    assert s.mode == "exclusive" and s.default.name == "Other"


@pytest.mark.parametrize(("spec", "message"), [
    ([], "a segment set is a mapping"),
    ({"segments": [{"name": "a", "rule": "x"}]}, "the set's name must be text"),
    ({"name": "x", "segments": []}, "segments must be a non-empty list"),
    ({"name": "x", "mode": "tags", "segments": [{"name": "a", "rule": "x"}]}, "mode 'tags' must be exclusive or overlapping"),
    ({"name": "x", "segments": [{"name": "a"}]}, "the rule of segment 'a' must be text"),
    ({"name": "x", "segments": [{"rule": "aov > 1"}]}, "the name of segment 1 must be text"),
    ({"name": "x", "segments": [{"name": "a", "rule": True}]}, "segment 'a': rule must be text in quotes"),
    ({"name": "x", "segments": [{"name": "a", "rule": "x", "rules": "y"}]}, "segment 1 has unknown keys rules"),
    ({"name": "x", "segmnts": []}, "the segment set has unknown keys segmnts"),
    ({"name": "x", "segments": [{"name": "a", "rule": "x"}, {"name": "a", "rule": "y"}]}, "'a' appear twice"),
    ({"name": "x", "default": "a", "segments": [{"name": "a", "rule": "x"}]}, "'a' appear twice"),
    ({"name": "x", "segments": ["aov > 1"]}, "segment 1 must be a mapping"),
])
def test_bad_definitions(spec, message):
    with pytest.raises(DefinitionError, match=message):
        load_segment_set(spec)


def test_bad_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(DefinitionError, match=r"bad\.yaml: not valid YAML"):
        load_segment_set(path)
    path.write_text("name: x\nsegments: [{name: a}]\n")
    with pytest.raises(DefinitionError, match=r"bad\.yaml: the rule of segment 'a'"):
        load_segment_set(path)


# -- runs in the store ------------------------------------------------------------------------

def test_run_records_parameters_and_memberships(store):
    store.replace("customer_features", hand_features())
    store.con.execute("ALTER TABLE customer_features ALTER last_order_date TYPE DATE")
    store.con.execute("ALTER TABLE customer_features ALTER as_of TYPE DATE")
    definition = {"name": "v", "mode": "overlapping", "default": "Untagged", "segments": [
        {"name": "Top", "rule": "aov >= p80(aov)"}, {"name": "Frequent", "rule": "orders_count >= 2"},
        {"name": "Never", "rule": "orders_count > 100"}]}
    seg = RuleSegmenter(definition)
    run_id = run_rules(store, seg)
    assert run_id.startswith("rules-")
    rows = store.con.execute("SELECT method, parameters, as_of, n_customers FROM segment_runs WHERE run_id = ?",
                             [run_id]).fetchall()
    method, params, as_of, n = rows[0]
    params = json.loads(params)
    assert (method, as_of, n) == ("rules", AS_OF, 5)
    assert params["thresholds"] == pytest.approx({"p80(aov)": 180.0})
    assert params["as_of"] == "2024-07-01" and params["segments"][0]["rule"] == "aov >= p80(aov)"
    sizes = segment_sizes(store, run_id, seg.definition_)
    assert sizes.to_dict("list") == {"segment": ["Top", "Frequent", "Never", "Untagged"],
                                     "customers": [1, 3, 0, 2], "share": [0.2, 0.6, 0.0, 0.4]}


def test_run_without_features_is_a_clear_error(store):
    with pytest.raises(ValueError, match="has no features yet; run `custseg features"):
        run_rules(store, RuleSegmenter({"name": "v", "segments": VALUE}))
