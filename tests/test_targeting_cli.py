"""The targeting commands: audience export, playbook show and init, plays in `custseg profile`."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from custseg import Store, pipeline
from custseg.cli.main import app
from custseg.datasets import load_demo, make_store

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    db = tmp_path_factory.mktemp("targeting-cli") / "demo.duckdb"
    with Store(db) as store:
        load_demo(store, make_store(800, seed=5))
        pipeline.build_and_store_features(store)
        rfm = pipeline.segment_rfm(store)
    return {"db": db, "rfm": rfm}


def test_playbook_init_writes_an_editable_file_and_refuses_to_overwrite(tmp_path):
    path = tmp_path / "pb.yaml"
    r = run("playbook", "init", "-o", path)
    assert r.exit_code == 0, r.output
    assert path.exists() and "Can't Lose Them" in path.read_text(encoding="utf-8")
    r = run("playbook", "init", "-o", path)
    assert r.exit_code == 1 and "exists" in r.output
    assert run("playbook", "init", "-o", path, "--force").exit_code == 0


def test_playbook_show_uses_the_file(demo, tmp_path):
    r = run("playbook", "show", "--db", demo["db"])
    assert r.exit_code == 0, r.output
    assert demo["rfm"] in r.output and "Reward and refer" in r.output and "built-in playbook" in r.output
    pb = tmp_path / "pb.yaml"
    pb.write_text("plays:\n  - segment: Champions\n    play: Crown them\n", encoding="utf-8")
    r = run("playbook", "show", demo["rfm"], "--playbook", pb, "--db", demo["db"])
    assert r.exit_code == 0, r.output
    assert "Crown them" in r.output and "Reward and refer" not in r.output
    pb.write_text("plays:\n  - segment: Champions\n    ofer: none\n", encoding="utf-8")
    r = run("playbook", "show", "--playbook", pb, "--db", demo["db"])
    assert r.exit_code == 1 and "unknown key 'ofer'" in r.output


def test_audience_export(demo, tmp_path):
    out = tmp_path / "aud.csv"
    r = run("audience", "export", "Champions,Lost", "-o", out, "--run", demo["rfm"], "--style", "mailchimp",
            "--holdout", "0.2", "--seed", "3", "--campaign-id", "CLI-1", "--recommendations", "0",
            "--format", "csv", "--db", demo["db"])
    assert r.exit_code == 0, r.output
    assert "CLI-1" in r.output and "custseg campaign analyze CLI-1" in r.output and "Per segment" in r.output
    df = pd.read_csv(out)
    assert df.columns[0] == "Email Address" and set(df["Segment"]) == {"Champions", "Lost"}
    with Store(demo["db"], read_only=True) as store:
        arms = dict(store.con.execute("SELECT arm, count(*) FROM campaign_assignments WHERE campaign_id = 'CLI-1' "
                                      "GROUP BY arm").fetchall())
    assert arms["treatment"] == len(df) and arms["control"] > 0
    assert "exported (treatment)" in r.output and f"{len(df):,}" in r.output


def test_audience_export_with_a_playbook_file_and_parquet(demo, tmp_path):
    pb = tmp_path / "pb.yaml"
    pb.write_text("plays:\n  - segment: Lost\n    offer: 25% voucher\n", encoding="utf-8")
    out = tmp_path / "aud.parquet"
    r = run("audience", "export", "Lost", "-o", out, "--playbook", pb, "--recommendations", "0", "--db", demo["db"])
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(out)
    assert set(df["offer"]) == {"25% voucher"} and df.columns[0] == "email"


def test_audience_export_errors_are_one_line(demo, tmp_path):
    r = run("audience", "export", "Champs", "-o", tmp_path / "x.csv", "--db", demo["db"])
    assert r.exit_code == 1 and "did you mean 'Champions'" in r.output
    assert not (tmp_path / "x.csv").exists()


def test_profile_shows_the_plays(demo, tmp_path):
    r = run("profile", demo["rfm"], "--db", demo["db"], "--sample", 200)
    assert r.exit_code == 0, r.output
    assert "Playbook" in r.output and "Reward and refer" in r.output and "Onboard" in r.output
    pb = tmp_path / "pb.yaml"
    pb.write_text("plays:\n  - segment: Champions\n    play: Crown them\n", encoding="utf-8")
    r = run("profile", demo["rfm"], "--db", demo["db"], "--sample", 200, "--playbook", pb)
    assert r.exit_code == 0, r.output
    assert "Crown them" in r.output
