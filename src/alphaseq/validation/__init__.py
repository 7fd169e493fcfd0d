"""Walk-forward and fixed splits with purge and embargo, and their integrity checks."""

from alphaseq.validation.splits import (
    FixedSplit,
    Fold,
    IntegrityReport,
    LeakageError,
    Segment,
    WalkForwardSplit,
    check_integrity,
    describe,
    stitched_test_rows,
)

__all__ = [
    "FixedSplit",
    "Fold",
    "IntegrityReport",
    "LeakageError",
    "Segment",
    "WalkForwardSplit",
    "check_integrity",
    "describe",
    "stitched_test_rows",
]
