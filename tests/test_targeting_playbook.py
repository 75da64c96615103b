"""Playbooks: built-in plays for every built-in segment name, YAML overrides, validation, plays of a run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from custseg import Store
from custseg.clv.segments import BANDS, PRIORITY, TIERS
from custseg.segmenters.rfm import SEGMENTS as RFM_SEGMENTS
from custseg.segmenters.rules.templates import TEMPLATES
from custseg.segmenters.runs import record_run
from custseg.targeting import PlaybookError, load_playbook, playbook_for_run, write_default_playbook
from custseg.targeting.playbook import PLAY_FIELDS

VALUE_SEGMENTS = [f"{t} · {b}" for t in TIERS for b in BANDS]


def _template_segments() -> dict[str, list[str]]:
    """Segment names of every template whose names do not come from the data."""
    out = {}
    for name, template in TEMPLATES.items():
        try:
            spec = template.build(None, None)
        except (AttributeError, TypeError):
            continue  # countries, categories, interests: names from the store's data
        names = [s["name"] for s in spec["segments"]]
        if spec.get("default"):
            names.append(spec["default"]["name"])
        out[name] = names
    return out


@pytest.fixture(scope="module")
def builtin():
    return load_playbook()


def test_the_template_name_lists_are_found():
    names = _template_segments()
    assert {"discount_seekers", "window_shoppers", "cart_abandoners", "lapsed", "age_band", "gender"} <= set(names)
    assert "Discount seekers" in names["discount_seekers"] and "Unknown age" in names["age_band"]
    assert len(VALUE_SEGMENTS) == len(set(PRIORITY)) == 9 and set(VALUE_SEGMENTS) == set(PRIORITY)


@pytest.mark.parametrize("name", RFM_SEGMENTS)
def test_every_rfm_segment_has_its_own_play(builtin, name):
    play = builtin.for_segment(name, "rfm")
    assert play is not builtin.default
    assert play.segment == name and play.source == "built-in"
    assert play.objective and play.actions and play.kpi and play.channel


@pytest.mark.parametrize("name", VALUE_SEGMENTS)
def test_every_value_risk_segment_has_its_own_play(builtin, name):
    play = builtin.for_segment(name, "value")
    assert play is not builtin.default and play.segment == name


@pytest.mark.parametrize(("template", "name"), [(t, n) for t, names in _template_segments().items() for n in names])
def test_every_template_segment_has_a_play(builtin, template, name):
    play = builtin.for_segment(name, f"template:{template}")
    assert play is not builtin.default, (template, name)
    assert play.objective and play.actions


@pytest.mark.parametrize(("template", "name"), [("country", "NL"), ("top_category", "Books"),
                                                 ("interests", "Garden")])
def test_templates_with_data_driven_names_get_their_template_play(builtin, template, name):
    assert builtin.for_segment(name, f"template:{template}") is not builtin.default
    assert builtin.for_segment(name, "rfm") is builtin.default  # the play is restricted to the template


def test_builtin_plays_say_what_a_marketer_expects(builtin):
    champions = builtin.for_segment("Champions", "rfm")
    assert champions.offer == "none" and any("referral" in a.lower() for a in champions.actions)
    for name, method in [("At Risk", "rfm"), ("Can't Lose Them", "rfm"), ("High value · at risk", "value")]:
        play = builtin.for_segment(name, method)
        assert "win-back" in play.play.lower() or "win back" in play.play.lower(), name
        assert "personal" in play.offer, name
    assert builtin.for_segment("New Customers", "rfm").play == "Onboard"
    assert "%" in builtin.for_segment("Discount seekers", "template:discount_seekers").offer
    for name, template in [("Window shoppers", "window_shoppers"), ("Cart abandoners", "cart_abandoners"),
                           ("Abandoned, never bought", "cart_abandoners")]:
        play = builtin.for_segment(name, f"template:{template}")
        assert "reminder" in (play.play + " ".join(play.actions)).lower(), name
    assert "no email" in builtin.for_segment("Unsubscribed", "template:email_engagement").channel


def test_names_ignore_case_and_unknown_segments_get_the_default(builtin):
    assert builtin.for_segment("champions").segment == "Champions"
    assert builtin.for_segment("Cluster 7", "cluster:kmeans") is builtin.default
    assert builtin.default.segment == "default" and builtin.default.offer == "none"
    # "Others" is too generic a name: its play only holds in a cart_abandoners run.
    assert builtin.for_segment("Others") is builtin.default
    assert builtin.for_segment("Others", "template:cart_abandoners") is not builtin.default


def _write(tmp_path, text: str, name: str = "pb.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_file_changes_only_the_fields_it_gives(tmp_path, builtin):
    path = _write(tmp_path, "plays:\n  - segment: Champions\n    offer: early access\n")
    pb = load_playbook(path)
    play, before = pb.for_segment("Champions", "rfm"), builtin.for_segment("Champions", "rfm")
    assert play.offer == "early access"
    assert (play.objective, play.actions, play.kpi) == (before.objective, before.actions, before.kpi)
    assert play.source == str(path)
    assert pb.for_segment("Loyal", "rfm") == builtin.for_segment("Loyal", "rfm")  # the rest unchanged
    assert len(pb.plays) == len(builtin.plays)  # replaced, not added


def test_a_files_glob_beats_builtin_names_and_respects_its_method(tmp_path, builtin):
    path = _write(tmp_path, """
plays:
  - segment: "High value · *"
    method: value
    play: VIP desk
    objective: Keep every high-value customer
    actions: [Personal call]
    offer: null
""")
    pb = load_playbook(path)
    for band in BANDS:
        play = pb.for_segment(f"High value · {band}", "value")
        assert (play.play, play.actions, play.offer) == ("VIP desk", ("Personal call",), None)
        # fields the new entry leaves out come from the default play
        assert play.channel == builtin.default.channel and play.kpi == builtin.default.kpi
    # without the method (or in another method's run) the built-in play holds
    assert pb.for_segment("High value · at risk").play == builtin.for_segment("High value · at risk").play
    assert pb.for_segment("Mid value · at risk", "value").play == "Re-engage"


def test_a_files_default_changes_the_default(tmp_path):
    pb = load_playbook(_write(tmp_path, "default:\n  offer: free shipping\n  kpi: revenue per customer\n"))
    play = pb.for_segment("Cluster 3", "cluster:kmeans")
    assert (play.offer, play.kpi, play.play) == ("free shipping", "revenue per customer", "Standard programme")
    assert load_playbook(_write(tmp_path, "", "empty.yaml")).plays == load_playbook().plays


@pytest.mark.parametrize(("text", "expected"), [
    ("- segment: Champions\n", "the file must be a mapping"),
    ("plays: []\nextra: 1\n", "unknown key 'extra'"),
    ("version: 2\n", "version 2 is not supported"),
    ("plays: {Champions: {offer: none}}\n", "plays must be a list"),
    ("plays:\n  - offer: none\n", "plays[0] has no segment"),
    ("plays:\n  - segment: Champions\n    ofer: none\n", ("plays[0] (segment 'Champions'): unknown key 'ofer' "
                                                        "(did you mean 'offer'?)")),
    ("plays:\n  - segment: Champions\n    actions: 3\n", "plays[0] (segment 'Champions'): actions must be a list"),
    ("plays:\n  - segment: Champions\n    offer: 10\n", "offer must be text or null, not 10"),
    ("plays:\n  - segment: Champions\n    objective: ''\n", "objective must be non-empty text"),
    ("plays:\n  - segment: Champions\n", "sets none of the play fields"),
    ("plays:\n  - {segment: VIP, offer: a}\n  - {segment: vip, offer: b}\n", "plays[1] (segment 'vip') repeats plays[0]"),
    ("default: [a]\n", "default must be a mapping"),
    ("default:\n  segment: x\n", "default: unknown key 'segment'"),
    ("plays: [\n", "is not valid YAML"),
])
def test_invalid_files_name_the_file_and_the_key(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(PlaybookError) as err:
        load_playbook(path)
    assert f"playbook {path}" in str(err.value)
    assert expected in str(err.value)


def test_a_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(PlaybookError, match="does not exist.*custseg playbook init"):
        load_playbook(tmp_path / "nope.yaml")


def test_the_default_playbook_file_round_trips(tmp_path, builtin):
    path = write_default_playbook(tmp_path / "pb.yaml")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# custseg playbook") and "High value · at risk" in text
    loaded = load_playbook(path)
    assert [p.to_dict() for p in loaded.plays] == [p.to_dict() for p in builtin.plays]
    assert loaded.default.to_dict() == builtin.default.to_dict()
    with pytest.raises(FileExistsError):
        write_default_playbook(path)
    write_default_playbook(path, overwrite=True)


def test_playbook_for_run_gives_one_row_per_segment_in_priority_order(tmp_path):
    sizes = {s: i + 1 for i, s in enumerate(reversed(PRIORITY))}  # the last priority is the biggest
    members = pd.DataFrame([(f"{s}-{k}", s) for s, n in sizes.items() for k in range(n)],
                           columns=["customer_id", "segment"])
    with Store(tmp_path / "s.duckdb") as store:
        run = record_run(store, "value", {"priority": list(PRIORITY)}, None, members)
        plays = playbook_for_run(store, run)
    assert plays["segment"].tolist() == list(PRIORITY)
    assert plays["customers"].tolist() == [sizes[s] for s in PRIORITY]
    assert plays["share"].sum() == pytest.approx(1.0)
    assert set(plays["run_id"]) == {run} and set(plays["method"]) == {"value"}
    assert {"segment", "customers", "share", *PLAY_FIELDS, "matched", "source"} <= set(plays.columns)
    row = plays.set_index("segment").loc["High value · at risk"]
    assert row["play"] == "Personal win-back" and isinstance(row["actions"], list)


def test_playbook_for_run_orders_by_size_and_uses_the_file(tmp_path):
    members = pd.DataFrame({"customer_id": [f"c{i}" for i in range(6)],
                            "segment": ["Lost", "Champions", "Champions", "Champions", "Lost", "Odd"]})
    path = _write(tmp_path, "plays:\n  - segment: Lost\n    offer: none\n")
    with Store(tmp_path / "s.duckdb") as store:
        record_run(store, "rfm", {}, None, members)
        plays = playbook_for_run(store, path=path)
    assert plays["segment"].tolist() == ["Champions", "Lost", "Odd"]
    assert plays["offer"].tolist() == ["none", "none", "none"]
    assert plays["source"].tolist() == ["built-in", str(path), "built-in"]
    assert plays["matched"].tolist() == ["Champions", "Lost", "default"]


DOC = Path(__file__).resolve().parents[1] / "docs" / "targeting.md"


def test_the_guide_lists_every_builtin_play(builtin):
    text = DOC.read_text(encoding="utf-8")
    for play in builtin.plays:
        seg = "any segment" if play.segment == "*" else play.segment
        method = f"`{play.method}`" if play.method else "any"
        assert f"| {seg} | {method} | {play.play} | {play.objective} | {play.offer or ''} |" in text, play.segment


def test_the_guides_example_file_loads(tmp_path):
    text = DOC.read_text(encoding="utf-8")
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    pb = load_playbook(_write(tmp_path, example))
    assert pb.for_segment("Champions", "rfm").offer == "early access"
    assert pb.for_segment("High value · likely lost", "value").play == "VIP desk"
    assert pb.for_segment("Browsers · no orders", "cluster:kmeans").play == "Convert"
    assert pb.for_segment("Cluster 2", "cluster:kmeans").kpi == "revenue per customer"
