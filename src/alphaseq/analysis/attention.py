"""Where the models look: temporal attention weights, their profile by lag, and a heat map.

Conventions
-----------
A model returns attention weights of shape ``(B, heads, L)`` in **window order**: index
0 is the oldest day of the window and index ``L - 1`` the most recent one (the forecast
date itself). Everything reported by this module is re-indexed **by lag** instead:

* lag 0 is the most recent day (the window's last step, ``weights[..., L - 1]``);
* lag ``k`` is ``k`` trading days before the forecast date (``weights[..., L - 1 - k]``);
* lag ``L - 1`` is the oldest day of the window (``weights[..., 0]``).

A lag profile is therefore comparable across lookbacks and reads naturally: "how much
weight goes to the day k days ago". Uniform attention puts ``1 / L`` on every lag.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from alphaseq.windows import WindowDataset, valid_samples

__all__ = [
    "attention_color_span",
    "attention_summary",
    "attention_weights",
    "average_by_lag",
    "plot_attention_heatmap",
    "ticker_attention",
    "top_lags",
]


def attention_weights(
    model: nn.Module, data: WindowDataset, batch_size: int = 4096
) -> np.ndarray | None:
    """Temporal attention weights of ``model`` for every sample of ``data``, in order.

    Parameters
    ----------
    model : torch.nn.Module
        A forecasting model whose ``forward(x, return_attention=True)`` returns a
        :class:`~alphaseq.models.ModelOutput`. It must live on ``data.device``. It is
        run in eval mode without gradients; its training mode is restored afterwards.
    data : WindowDataset
        The samples, served in their stored order (date, then ticker).
    batch_size : int, default 4096
        Windows per forward pass.

    Returns
    -------
    numpy.ndarray or None
        ``(S, heads, L)`` float32 weights in window order (index 0 = oldest day, see
        :func:`average_by_lag` for the lag order); every ``(sample, head)`` row sums to
        one. None when the model has no attention (e.g. ``"linear"``, or
        ``attention_heads=0``).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if len(data) == 0:
                # No sample to run: probe one dummy window to learn whether the model
                # has attention at all, and with how many heads.
                probe = torch.zeros(1, data.lookback, data.features.shape[-1], device=data.device)
                attention = model(probe, return_attention=True).attention
                if attention is None:
                    return None
                return np.zeros((0, *attention.shape[1:]), dtype=np.float32)
            parts: list[np.ndarray] = []
            for x, _, _ in data.batches(batch_size, shuffle=False):
                attention = model(x, return_attention=True).attention
                if attention is None:
                    return None
                parts.append(attention.float().cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(parts).astype(np.float32, copy=False)


def average_by_lag(weights: np.ndarray) -> np.ndarray:
    """Mean attention per lag, over samples and heads.

    Parameters
    ----------
    weights : numpy.ndarray
        ``(S, heads, L)`` weights in window order, as :func:`attention_weights` returns
        them (any leading axes are averaged the same way; ``(L,)`` is just re-indexed).

    Returns
    -------
    numpy.ndarray
        ``(L,)`` float64 profile **by lag**: index 0 = lag 0 = the most recent day (the
        window's last step), index ``L - 1`` = the oldest day. It sums to one when every
        input row does.

    Raises
    ------
    ValueError
        For a scalar input or one without any sample.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim < 1 or weights.shape[-1] == 0:
        raise ValueError(f"weights must have a last axis of L >= 1 days, got {weights.shape}")
    if weights.size == 0:
        raise ValueError(f"no attention weights to average (shape {weights.shape})")
    profile = weights.reshape(-1, weights.shape[-1]).mean(axis=0)
    # Window order (oldest first) -> lag order (most recent first).
    return profile[::-1].copy()


def top_lags(profile: np.ndarray, n: int = 5) -> list[dict[str, int | float]]:
    """The ``n`` lags with the most attention, heaviest first.

    Parameters
    ----------
    profile : numpy.ndarray
        ``(L,)`` lag profile (index = lag), as :func:`average_by_lag` returns it.
    n : int, default 5
        How many lags (at most L).

    Returns
    -------
    list of dict
        ``[{"lag": int, "weight": float}, ...]`` by descending weight; equal weights
        keep the more recent lag first.
    """
    profile = np.asarray(profile, dtype=np.float64).reshape(-1)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    order = np.argsort(-profile, kind="stable")[:n]
    return [{"lag": int(k), "weight": float(profile[k])} for k in order]


def _checked_profiles(
    per_fold: Sequence[np.ndarray | None], counts: Sequence[int] | None
) -> tuple[list[int], list[np.ndarray], list[float] | None]:
    """Positions, profiles and counts of the folds that have a profile (and samples)."""
    if counts is not None and len(counts) != len(per_fold):
        raise ValueError(f"got {len(per_fold)} fold profiles but {len(counts)} sample counts")
    if counts is not None and any(c < 0 for c in counts):
        raise ValueError(f"sample counts must be >= 0, got {list(counts)}")
    keep = [
        k
        for k, profile in enumerate(per_fold)
        # A fold without samples carries no information, whatever its profile says.
        if profile is not None and (counts is None or counts[k] > 0)
    ]
    profiles = [np.asarray(per_fold[k], dtype=np.float64).reshape(-1) for k in keep]
    lengths = {len(p) for p in profiles}
    if len(lengths) > 1:
        raise ValueError(f"fold profiles have different lookbacks: {sorted(lengths)}")
    weights = None if counts is None else [float(counts[k]) for k in keep]
    return keep, profiles, weights


def attention_summary(
    per_fold: Sequence[np.ndarray | None], counts: Sequence[int], n_top: int = 5
) -> dict | None:
    """JSON-ready summary of the attention profiles of walk-forward folds.

    Parameters
    ----------
    per_fold : sequence of numpy.ndarray or None
        One ``(L,)`` lag profile per fold (:func:`average_by_lag` of its test samples),
        or None for a fold without attention or without test samples.
    counts : sequence of int
        Number of test samples behind each profile; the out-of-sample profile weights
        every fold by it, so that it equals the mean over all out-of-sample windows.
    n_top : int, default 5
        Lags listed in ``top_lags``.

    Returns
    -------
    dict or None
        None when no fold has a profile (with samples), otherwise:

        * ``folds``: positions in ``per_fold`` of the folds kept (None entries and
          folds with no sample are skipped), and ``counts``: their sample counts;
        * ``per_fold``: their profiles, lists of L floats (index = lag, 0 = most recent);
        * ``out_of_sample``: the sample-count-weighted mean profile;
        * ``top_lags``: :func:`top_lags` of the out-of-sample profile;
        * ``uniform``: ``1 / L``, the weight of every lag under uniform attention;
        * ``lookback``: L.
    """
    keep, profiles, weights = _checked_profiles(per_fold, counts)
    if not profiles:
        return None
    overall = np.average(np.stack(profiles), axis=0, weights=weights)
    lookback = len(overall)
    return {
        "folds": keep,
        "counts": [int(counts[k]) for k in keep],
        "per_fold": [[float(v) for v in p] for p in profiles],
        "out_of_sample": [float(v) for v in overall],
        "top_lags": top_lags(overall, n_top),
        "uniform": 1.0 / lookback,
        "lookback": lookback,
    }


def plot_attention_heatmap(
    per_fold: Sequence[np.ndarray | None],
    path: str | Path,
    *,
    title: str | None = None,
    fold_labels: Sequence[str] | None = None,
    counts: Sequence[int] | None = None,
    dpi: int = 120,
) -> Path:
    """Draw the attention profiles of the folds as a heat map and save it as a PNG.

    Rows are the folds (top to bottom) and a last "out of sample" row with their mean;
    columns are lags 0 .. L-1 (0 = the most recent day, left).

    Parameters
    ----------
    per_fold : sequence of numpy.ndarray or None
        One ``(L,)`` lag profile per fold; None entries are left out.
    path : str or Path
        Where to write the PNG (parent folders are created).
    title : str, optional
        Figure title (default: "Temporal attention by lag").
    fold_labels : sequence of str, optional
        Row label of each entry of ``per_fold`` (default ``"fold <k>"``).
    counts : sequence of int, optional
        Test samples per fold: the out-of-sample row is then weighted by them, as in
        :func:`attention_summary`; by default every fold counts the same.
    dpi : int, default 120
        Resolution of the PNG.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ValueError
        When no fold has a profile, or the profiles have different lengths.
    """
    if fold_labels is not None and len(fold_labels) != len(per_fold):
        raise ValueError(f"got {len(per_fold)} fold profiles but {len(fold_labels)} labels")
    keep, profiles, weights = _checked_profiles(per_fold, counts)
    if not profiles:
        raise ValueError("no fold has an attention profile to plot")
    overall = np.average(np.stack(profiles), axis=0, weights=weights)
    grid = np.vstack([*profiles, overall])
    labels = [str(fold_labels[k]) if fold_labels is not None else f"fold {k}" for k in keep]
    labels.append("out of sample")
    n_rows, lookback = grid.shape

    # Imported here: matplotlib costs ~0.4 s, which only the runs that draw should pay.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A Figure with its own Agg canvas, not pyplot: no display, no global figure
    # registry to leak into, safe in worker threads and headless runs.
    fig = Figure(figsize=(min(4.0 + 0.08 * lookback, 14.0), 1.4 + 0.32 * n_rows))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    # Colour the deviation from uniform attention on a symmetric scale of at least
    # ±25 %: near-uniform profiles then read as near white, not as structure.
    deviation = grid * lookback - 1.0
    span = attention_color_span(deviation)
    image = ax.imshow(
        deviation * 100.0,
        aspect="auto",
        interpolation="nearest",
        cmap="RdBu_r",
        vmin=-span * 100.0,
        vmax=span * 100.0,
        extent=(-0.5, lookback - 0.5, n_rows - 0.5, -0.5),
    )
    ax.axhline(n_rows - 1.5, color="#333333", linewidth=1.2)  # folds above, their mean below
    # Titles and fold labels are user strings: "$10k_$20k" is text, not math text.
    ax.set_yticks(range(n_rows), labels, parse_math=False)
    ax.set_xlabel("lag (trading days before the forecast date; 0 = most recent)")
    ax.set_ylabel("walk-forward fold")
    ax.set_title(title or "Temporal attention by lag", parse_math=False)
    colorbar = fig.colorbar(image, ax=ax, pad=0.02)
    colorbar.set_label(f"attention vs uniform, % (weight ÷ 1/L − 1; 1/L = {1.0 / lookback:.3g})")
    fig.tight_layout()

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png", bbox_inches="tight")
    fig.clear()  # release the artists now rather than at garbage collection
    return path


def attention_color_span(deviation: np.ndarray, floor: float = 0.25) -> float:
    """Half-width of the attention heat map's colour scale: the largest deviation from
    uniform (as a fraction, ``weight * L - 1``), never below ``floor``."""
    finite = np.abs(deviation[np.isfinite(deviation)])
    return float(max(floor, finite.max() if finite.size else 0.0))


def ticker_attention(
    model: nn.Module,
    values: np.ndarray,
    mask: np.ndarray | None,
    lookback: int,
    row: int,
    tickers: Sequence[str],
) -> pd.DataFrame | None:
    """Attention of every ticker's window ending at one date, averaged over heads.

    Parameters
    ----------
    model : torch.nn.Module
        The forecasting model (run on the device of its parameters).
    values : numpy.ndarray
        ``(T, N, F)`` model inputs, i.e. the features after the fitted scaler.
    mask : numpy.ndarray or None
        ``(T, N)`` bool, True where the ticker trades (``Panel.mask``); None for all.
    lookback : int
        Window length L the model was trained with.
    row : int
        Date row of the forecast (negative counts from the end, ``-1`` = last date).
    tickers : sequence of str
        The N ticker names, in column order.

    Returns
    -------
    pandas.DataFrame or None
        Index ``ticker`` (the tickers with a complete window at ``row``, in column
        order), columns ``lag_0 .. lag_{L-1}`` (lag 0 = the most recent day); every row
        sums to one. Empty when no ticker has a complete window; None when the model
        has no attention.
    """
    values = np.asarray(values)
    if values.ndim != 3:
        raise ValueError(f"values must be (T, N, F), got shape {values.shape}")
    n_dates, n_tickers = values.shape[:2]
    if len(tickers) != n_tickers:
        raise ValueError(f"got {len(tickers)} tickers for {n_tickers} columns of values")
    if mask is not None and np.shape(mask) != (n_dates, n_tickers):
        raise ValueError(f"mask must be (T, N) = {(n_dates, n_tickers)}, got {np.shape(mask)}")
    if not -n_dates <= row < n_dates:
        raise ValueError(f"row {row} is outside the {n_dates} dates")
    row %= n_dates

    # Only the L rows of the window matter: slice them so that a long panel is not
    # copied to the model's device for one date.
    first = max(0, row - lookback + 1)
    window = values[first : row + 1]
    samples = valid_samples(
        window,
        lookback,
        mask=None if mask is None else np.asarray(mask, dtype=bool)[first : row + 1],
        start=len(window) - 1,
    )
    device = next(model.parameters()).device
    data = WindowDataset(window, samples, device=device)
    weights = attention_weights(model, data)
    if weights is None:
        return None
    columns = [f"lag_{k}" for k in range(lookback)]
    # Heads averaged, then window order reversed into lag order (lag 0 first).
    by_lag = weights.astype(np.float64).mean(axis=1)[:, ::-1]
    index = pd.Index(np.asarray(tickers, dtype=object)[samples.i], name="ticker")
    return pd.DataFrame(by_lag, index=index, columns=columns)
