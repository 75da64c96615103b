"""Segmenters: RFM today; rules, clustering and value segments build on the same runs."""

from custseg.segmenters.rfm import DEFAULT_SEGMENT_MAP, SEGMENTS, RFMSegmenter, load_segment_map, run_rfm

__all__ = ["DEFAULT_SEGMENT_MAP", "SEGMENTS", "RFMSegmenter", "load_segment_map", "run_rfm"]
