"""Immutable on-disk blocks: index, postings, frames, tombstones."""
