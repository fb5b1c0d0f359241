"""Where the real recorded floods are: ../shared/data beside the repository, or
$FLOODWATCH_SHARED_DATA. Never copied into the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA_DIR = Path(
    os.environ.get("FLOODWATCH_SHARED_DATA")
    or Path(__file__).resolve().parents[2].parent / "shared" / "data"
)


def require_data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.skip(f"shared recordings not found at {DATA_DIR} (set FLOODWATCH_SHARED_DATA)")
    return DATA_DIR
