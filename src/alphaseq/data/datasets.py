"""Built-in data sets that need no download.

``sp500_index``: the S&P 500 index alone (one instrument, for timing strategies).

``sp500``: daily adjusted close prices of 20 S&P 500 stocks from 1990-01-02 to
2022-12-28 with the S&P 500 index as benchmark, as shipped inside the ``skfolio``
package (:func:`skfolio.datasets.load_sp500_dataset`). Close prices only: features
that need OHLC or volume are not available on it. The 20 stocks were chosen among
companies still listed at the end of the sample, so results on it carry
survivorship bias.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from alphaseq.data.panel import Panel
from alphaseq.errors import DataError


def _load_sp500() -> Panel:
    from skfolio.datasets import load_sp500_dataset, load_sp500_index

    from alphaseq.data.loaders import panel_from_frame

    prices = load_sp500_dataset()
    index = load_sp500_index()
    panel = panel_from_frame(prices, "built-in data set 'sp500'", ticker=None, name="sp500")
    bench = index.iloc[:, 0].reindex(pd.DatetimeIndex(panel.dates)).to_numpy(np.float64)
    return panel._replace(
        benchmark=bench,
        benchmark_name="S&P 500 index",
        meta=panel.meta
        | {
            "source": "skfolio.datasets.load_sp500_dataset (bundled with skfolio)",
            "adjusted": True,
            "survivorship_bias": (
                "the 20 stocks were chosen among companies still listed at the end of the sample"
            ),
        },
    )


def _load_sp500_index() -> Panel:
    from skfolio.datasets import load_sp500_index

    from alphaseq.data.loaders import panel_from_frame

    index = load_sp500_index()
    panel = panel_from_frame(
        index, "built-in data set 'sp500_index'", ticker=None, name="sp500_index"
    )
    return panel._replace(
        meta=panel.meta
        | {
            "source": "skfolio.datasets.load_sp500_index (bundled with skfolio)",
            "adjusted": False,
        }
    )


#: Name -> loader of every built-in data set.
DATASETS: dict[str, Callable[[], Panel]] = {
    "sp500": _load_sp500,
    "sp500_index": _load_sp500_index,
}
#: Name -> one-line description, for ``alphaseq data list``.
DESCRIPTIONS: dict[str, str] = {
    "sp500": (
        "20 S&P 500 stocks, adjusted close, 1990-2022, S&P 500 index as benchmark "
        "(bundled with skfolio; survivorship bias)"
    ),
    "sp500_index": "the S&P 500 index alone, daily 1990-2022 (price index, no dividends)",
}


def load_dataset(name: str) -> Panel:
    """Load a built-in data set by name (see :data:`DATASETS`)."""
    try:
        loader = DATASETS[name]
    except KeyError:
        raise DataError(
            f"unknown built-in data set {name!r}; available: {sorted(DATASETS)}"
        ) from None
    return loader()
