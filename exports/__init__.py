"""Data out: a campaign's answer sheets as csv, xlsx, sav or parquet with a codebook (CONTRACT §9).

Feature layer: reads the store's row source (`SqlStore.iter_sheets`, the columns computed by the
engine from `sql.py`'s SQL) and the registry's campaign state; imports schemas, core and storage
only.
"""
