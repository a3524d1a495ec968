"""The domain core: pure judging, attribution and counting logic. No I/O imports here."""
