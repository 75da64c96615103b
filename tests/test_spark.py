"""The same features and RFM code on Spark give the same answers as on DuckDB."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import TEST_DATA
from custseg.engines import SparkSource, export_parquet
from custseg.features import build_features
from custseg.segmenters import RFMSegmenter
from handmade import load_cdnow_sample, load_handmade

pyspark = pytest.importorskip("pyspark", reason="Spark tests need the spark extra: pip install 'custseg[spark]'")

pytestmark = [pytest.mark.slow, pytest.mark.spark]


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    from pyspark.sql import SparkSession

    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = (
        SparkSession.builder.master("local[2]")
        .appName("custseg-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.warehouse.dir", str(warehouse))
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _spark_copy(spark, store, folder):
    export_parquet(store, folder)
    return SparkSource.from_parquet_folder(spark, folder)


def assert_frames_equal(duck: pd.DataFrame, sp: pd.DataFrame, key: str = "customer_id") -> None:
    assert sorted(duck.columns) == sorted(sp.columns)
    duck = duck.sort_values(key).reset_index(drop=True)
    sp = sp[duck.columns].sort_values(key).reset_index(drop=True)
    assert len(duck) == len(sp)
    for col in duck.columns:
        a, b = duck[col], sp[col]
        if pd.api.types.is_numeric_dtype(a) and not pd.api.types.is_bool_dtype(a):
            a, b = a.astype(float).to_numpy(), pd.to_numeric(b, errors="coerce").astype(float).to_numpy()
            assert np.array_equal(np.isnan(a), np.isnan(b)), f"{col}: NULLs differ"
            np.testing.assert_allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=1e-9, err_msg=col)
        elif pd.api.types.is_datetime64_any_dtype(a) or pd.api.types.is_datetime64_any_dtype(b):
            assert (pd.to_datetime(a).fillna(pd.Timestamp(0)) == pd.to_datetime(b).fillna(pd.Timestamp(0))).all(), col
        else:
            norm = lambda s: s.astype(object).where(s.notna(), None).tolist()  # noqa: E731
            assert norm(a) == norm(b), col




def test_handmade_features_equal_on_spark(spark, store, tmp_path):
    load_handmade(store)
    source = _spark_copy(spark, store, tmp_path / "pq")
    duck = store.to_pandas(build_features(store, "2024-03-10"))
    sp = source.ibis.execute(build_features(source, "2024-03-10"))
    assert_frames_equal(duck, sp)


def test_cdnow_sample_features_and_rfm_equal_on_spark(spark, store, tmp_path):
    load_cdnow_sample(store, TEST_DATA / "CDNOW_sample.txt")
    source = _spark_copy(spark, store, tmp_path / "pq")
    f_duck = build_features(store, "1997-10-01")
    f_spark = build_features(source, "1997-10-01")
    assert_frames_equal(store.to_pandas(f_duck), source.ibis.execute(f_spark))

    seg_duck = RFMSegmenter().fit(f_duck, store.ibis)
    seg_spark = RFMSegmenter().fit(f_spark, source.ibis)
    assert seg_duck.thresholds_ == seg_spark.thresholds_
    m_duck = store.to_pandas(seg_duck.assign(f_duck))
    m_spark = source.ibis.execute(seg_spark.assign(f_spark))
    assert len(m_duck) == 2357
    assert_frames_equal(m_duck, m_spark)


def test_demo_store_features_and_rfm_equal_on_spark(spark, store, tmp_path):
    """Every block (items, email, browsing, demographics, surveys, currencies) on realistic data."""
    from custseg.datasets import load_demo, make_store

    load_demo(store, make_store(1500, seed=5))
    source = _spark_copy(spark, store, tmp_path / "pq")
    f_duck = build_features(store)
    f_spark = build_features(source)
    duck, sp = store.to_pandas(f_duck), source.ibis.execute(f_spark)
    assert len(duck) == 1500 and duck.top_category.notna().any() and duck.sessions_90d.gt(0).any()
    assert_frames_equal(duck, sp)
    seg_duck = RFMSegmenter().fit(f_duck, store.ibis)
    seg_spark = RFMSegmenter().fit(f_spark, source.ibis)
    assert seg_duck.thresholds_ == seg_spark.thresholds_
    assert_frames_equal(store.to_pandas(seg_duck.assign(f_duck)), source.ibis.execute(seg_spark.assign(f_spark)))
