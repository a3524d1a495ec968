"""Data out: a campaign's answer sheets as csv, xlsx, sav or parquet with a codebook (CONTRACT §9).

Feature layer: reads the store's row source (`SqlStore.iter_sheets`, with the columns as SQL for the
engine to compute: `sql.py`) and the registry's campaign
state; imports schemas, core and storage only.
"""
