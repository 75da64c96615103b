"""Cluster assignment is the same on Spark as on DuckDB: the nearest-centroid (and mixture,
k-prototypes) rule runs as Ibis arithmetic on either engine."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyspark", reason="Spark tests need the spark extra: pip install 'custseg[spark]'")

from test_spark import assert_frames_equal, spark  # noqa: F401 - the shared Spark session fixture

from custseg.datasets import load_demo, make_store
from custseg.engines import SparkSource, export_parquet
from custseg.features import build_features
from custseg.segmenters.cluster import ClusterSegmenter
from custseg.segmenters.cluster.sample import sample_frame

pytestmark = [pytest.mark.slow, pytest.mark.spark]


@pytest.fixture(scope="module")
def engines(spark, tmp_path_factory):  # noqa: F811
    from custseg import Store

    folder = tmp_path_factory.mktemp("cluster-spark")
    store = Store(folder / "demo.duckdb")
    load_demo(store, make_store(1200, seed=6))
    source = SparkSource.from_parquet_folder(spark, export_parquet(store, folder / "pq")[0].parent)
    f_duck, f_spark = build_features(store), build_features(source)
    yield store, source, f_duck, f_spark
    store.close()


@pytest.mark.parametrize("method,k", [("kmeans", None), ("gmm", 4), ("kprototypes", 4), ("kmeans", 5)])
def test_assignments_are_identical_on_both_engines(engines, method, k):
    store, source, f_duck, f_spark = engines
    extra = {"pca": 4} if (method, k) == ("kmeans", 5) else {}
    seg = ClusterSegmenter(method=method, k=k, n_refits=0, **extra).fit(f_duck, store.ibis)
    duck = store.to_pandas(seg.assign(f_duck))
    sp = source.ibis.execute(seg.assign(f_spark))
    assert len(duck) == 1200 and duck.cluster.nunique() == seg.k_
    assert_frames_equal(duck, sp)


def test_fitting_on_spark_gives_the_duckdb_model(engines):
    store, source, f_duck, f_spark = engines
    a = ClusterSegmenter(k=5, n_refits=0).fit(f_duck, store.ibis)
    b = ClusterSegmenter(k=5, n_refits=0).fit(f_spark, source.ibis)
    np.testing.assert_allclose(a.centers_, b.centers_, rtol=1e-9, atol=1e-12)
    assert a.labels_names_ == b.labels_names_


def test_the_seeded_sample_is_the_same_on_both_engines(engines):
    store, source, f_duck, f_spark = engines
    duck, n = sample_frame(f_duck, store.ibis, ["aov"], 400, seed=3)
    sp, m = sample_frame(f_spark, source.ibis, ["aov"], 400, seed=3)
    assert n == m == 1200 and 300 < len(duck) < 500
    assert duck.customer_id.tolist() == sp.customer_id.tolist()
