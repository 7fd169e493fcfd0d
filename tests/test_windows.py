"""Lookback windows: sample selection, gathering by index and batching.

Every result is checked against the obvious slow version: a window is
``features[t - L + 1 : t + 1, i, :]``, a sample is valid when that window is finite,
the ticker trades at t and the label is finite, and batches are sets of positions.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import alphaseq
from alphaseq.errors import ConfigError
from alphaseq.features import compute_features, make_labels
from alphaseq.windows import (
    SampleIndex,
    WindowDataset,
    date_batches,
    gather_windows,
    random_batches,
    valid_samples,
)

CUDA = torch.cuda.is_available()
_BITS = {torch.float64: torch.int64, torch.float32: torch.int32, torch.bfloat16: torch.int16}


# ----------------------------------------------------------------------------- helpers
def naive_windows(values: torch.Tensor, t, i, lookback: int) -> torch.Tensor:
    """``values[t - L + 1 : t + 1, i, :]`` for each sample, stacked: the reference."""
    t, i = torch.as_tensor(t).tolist(), torch.as_tensor(i).tolist()
    if not t:
        return values.new_empty((0, lookback, values.shape[-1]))
    return torch.stack([values[a - lookback + 1 : a + 1, b, :] for a, b in zip(t, i, strict=True)])


def assert_same_bits(got: torch.Tensor, want: torch.Tensor) -> None:
    """Identical dtype, shape, device and bit pattern (NaN included)."""
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    assert got.device == want.device
    bits = _BITS[got.dtype]
    assert torch.equal(got.contiguous().view(bits), want.contiguous().view(bits))


def random_samples(rng: np.random.Generator, n_dates: int, n_tickers: int, lookback: int, n: int):
    t = rng.integers(lookback - 1, n_dates, n)
    i = rng.integers(0, n_tickers, n)
    return torch.from_numpy(t), torch.from_numpy(i)


def brute_force_samples(
    features, lookback, labels=None, mask=None, start=0, end=None, h=0, stride=1
):
    """Every valid (t, i), one by one, straight from the definition."""
    n_dates, n_tickers, _ = features.shape
    end = n_dates - 1 if end is None else min(end, n_dates - 1)
    out = []
    for t in range(n_dates):
        if t < start or t + h > end or (t - start) % stride or t < lookback - 1:
            continue
        for i in range(n_tickers):
            if not np.isfinite(features[t - lookback + 1 : t + 1, i, :]).all():
                continue
            if mask is not None and not mask[t, i]:
                continue
            if labels is not None and not np.isfinite(labels[t, i]).all():
                continue
            out.append((t, i))
    return out


def planted_panel(seed: int = 0, n_dates: int = 40, n_tickers: int = 5, n_features: int = 3):
    """Small random features, labels and mask with NaN holes of every kind."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n_dates, n_tickers, n_features)).astype(np.float32)
    features[rng.random(features.shape) < 0.02] = np.nan  # single NaN features
    features[:7, 1] = np.nan  # a late starter
    features[30:, 2] = np.nan  # a ticker that stops
    features[15:18, 3, 0] = np.inf  # an infinite run
    labels = rng.normal(size=(n_dates, n_tickers, 2)).astype(np.float32)
    labels[-3:] = np.nan  # the last labels are unknown
    labels[rng.random(labels.shape) < 0.03] = np.nan
    mask = rng.random((n_dates, n_tickers)) > 0.05
    return features, labels, mask


@pytest.fixture(scope="module")
def sp500():
    """Real data: the embedded sp500 panel, its features and 21-day labels."""
    panel = alphaseq.load_panel("sp500")
    features = compute_features(panel)
    labels = make_labels(panel, "forward_return", (5, 21))
    return panel, features.values, labels.values


# ----------------------------------------------------------------------------- gather
@pytest.mark.parametrize("lookback", [1, 2, 21, 60])
def test_gather_equals_naive_slicing_on_real_data(sp500, lookback: int) -> None:
    panel, features, _ = sp500
    values = torch.from_numpy(features)
    t, i = random_samples(np.random.default_rng(lookback), *panel.shape, lookback, 500)
    t[:2] = torch.tensor([lookback - 1, panel.n_dates - 1])  # both ends of the panel
    i[:2] = torch.tensor([0, panel.n_tickers - 1])
    got = gather_windows(values, t, i, lookback)
    assert got.shape == (500, lookback, features.shape[-1])
    assert_same_bits(got, naive_windows(values, t, i, lookback))
    # oldest day first: out[b, k] = values[t - L + 1 + k, i]
    assert_same_bits(got[:, -1], values[t, i])
    assert_same_bits(got[:, 0], values[t - lookback + 1, i])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("lookback", [1, 3, 10])
def test_gather_on_a_small_random_tensor(dtype: torch.dtype, lookback: int) -> None:
    generator = torch.Generator().manual_seed(7)
    values = torch.randn(30, 7, 4, generator=generator).to(dtype)
    values[5, 2, 1] = float("nan")
    t, i = random_samples(np.random.default_rng(1), 30, 7, lookback, 64)
    got = gather_windows(values, t, i, lookback)
    assert got.dtype == dtype and got.shape == (64, lookback, 4)
    assert_same_bits(got, naive_windows(values, t, i, lookback))


def test_gather_edge_cases() -> None:
    values = torch.arange(5 * 3 * 2, dtype=torch.float64).reshape(5, 3, 2)
    # no samples
    empty = torch.empty(0, dtype=torch.int64)
    assert gather_windows(values, empty, empty, 4).shape == (0, 4, 2)
    # repeated and unsorted samples; the whole panel as one window
    t, i = torch.tensor([4, 4, 3, 4]), torch.tensor([2, 0, 1, 2])
    assert_same_bits(gather_windows(values, t, i, 4), naive_windows(values, t, i, 4))
    assert_same_bits(gather_windows(values, t[:1], i[:1], 5)[0], values[:, 2, :])
    # a non-contiguous view (every other feature) gathers the same as a copy
    wide = torch.randn(12, 4, 6, dtype=torch.float64)
    view = wide[:, :, ::2]
    assert not view.is_contiguous()
    t, i = torch.tensor([3, 11, 7]), torch.tensor([0, 3, 2])
    assert_same_bits(gather_windows(view, t, i, 4), naive_windows(view.contiguous(), t, i, 4))


@settings(max_examples=60, deadline=None)
@given(
    n_dates=st.integers(1, 15),
    n_tickers=st.integers(1, 5),
    n_features=st.integers(1, 4),
    data=st.data(),
)
def test_gather_property(n_dates: int, n_tickers: int, n_features: int, data) -> None:
    lookback = data.draw(st.integers(1, n_dates), label="lookback")
    n = data.draw(st.integers(0, 20), label="batch")
    t = data.draw(st.lists(st.integers(lookback - 1, n_dates - 1), min_size=n, max_size=n))
    i = data.draw(st.lists(st.integers(0, n_tickers - 1), min_size=n, max_size=n))
    values = torch.randn(n_dates, n_tickers, n_features, dtype=torch.float64)
    t, i = torch.tensor(t, dtype=torch.int64), torch.tensor(i, dtype=torch.int64)
    assert_same_bits(gather_windows(values, t, i, lookback), naive_windows(values, t, i, lookback))


@pytest.mark.skipif(not CUDA, reason="no CUDA device (torch.cuda.is_available() is False)")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("lookback", [1, 60])
def test_gather_on_cuda(dtype: torch.dtype, lookback: int) -> None:
    values = torch.randn(300, 40, 8, dtype=torch.float64).to(dtype)
    values[100:110, 3] = float("nan")
    t, i = random_samples(np.random.default_rng(0), 300, 40, lookback, 2048)
    want = gather_windows(values, t, i, lookback)
    got = gather_windows(values.cuda(), t.cuda(), i.cuda(), lookback)
    assert got.device.type == "cuda" and got.dtype == dtype
    assert_same_bits(got.cpu(), want)
    assert_same_bits(want, naive_windows(values, t, i, lookback))


@pytest.mark.skipif(not CUDA, reason="no CUDA device (torch.cuda.is_available() is False)")
def test_window_dataset_on_cuda() -> None:
    features, labels, mask = planted_panel(3)
    samples = valid_samples(features, 5, labels=labels, mask=mask)
    data = WindowDataset(features, samples, labels, device="cuda")
    values = torch.from_numpy(features)
    seen = []
    for x, y, positions in data.batches(16, generator=torch.Generator().manual_seed(0)):
        assert x.device.type == y.device.type == positions.device.type == "cuda"
        p = positions.cpu()
        t, i = torch.from_numpy(samples.t)[p], torch.from_numpy(samples.i)[p]
        assert_same_bits(x.cpu(), naive_windows(values, t, i, 5))
        assert_same_bits(y.cpu(), torch.from_numpy(labels)[t, i])
        seen.append(p)
    assert torch.equal(torch.cat(seen).sort().values, torch.arange(len(samples)))


# ----------------------------------------------------------------------------- samples
def check_samples_are_valid(samples: SampleIndex, features, lookback, labels=None, mask=None):
    t, i = samples.t, samples.i
    assert t.dtype == i.dtype == np.int64
    assert samples.lookback == lookback
    keys = t * features.shape[1] + i
    assert (np.diff(keys) > 0).all(), "samples must be sorted by (t, i), without repeats"
    assert (t >= lookback - 1).all()
    windows = naive_windows(torch.from_numpy(features), t, i, lookback)
    assert torch.isfinite(windows).all()
    if mask is not None:
        assert mask[t, i].all()
    if labels is not None:
        assert np.isfinite(labels[t, i]).all()


@pytest.mark.parametrize("lookback", [1, 21, 60])
def test_valid_samples_on_real_data(sp500, lookback: int) -> None:
    panel, features, labels = sp500
    samples = valid_samples(features, lookback, labels=labels, mask=panel.mask)
    assert len(samples) > 100_000
    # every sample is valid (checked on a random subset of the windows) ...
    pick = np.random.default_rng(0).choice(len(samples), 3000, replace=False)
    subset = SampleIndex(samples.t[np.sort(pick)], samples.i[np.sort(pick)], lookback)
    check_samples_are_valid(subset, features, lookback, labels, panel.mask)
    assert (np.diff(samples.t * panel.n_tickers + samples.i) > 0).all()
    # ... and none is missing: an independent sliding-window check of every cell
    complete = np.isfinite(features).all(axis=-1)
    expected = np.zeros(panel.shape, dtype=bool)
    expected[lookback - 1 :] = np.lib.stride_tricks.sliding_window_view(
        complete, lookback, axis=0
    ).all(axis=-1)
    expected &= panel.mask & np.isfinite(labels).all(axis=-1)
    got = np.zeros(panel.shape, dtype=bool)
    got[samples.t, samples.i] = True
    np.testing.assert_array_equal(got, expected)
    assert samples.n_dates() == len(np.unique(samples.t))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("lookback", [1, 4, 12])
def test_valid_samples_brute_force(seed: int, lookback: int) -> None:
    features, labels, mask = planted_panel(seed)
    for kwargs in ({}, {"mask": mask}, {"labels": labels}, {"labels": labels, "mask": mask}):
        samples = valid_samples(features, lookback, **kwargs)
        check_samples_are_valid(samples, features, lookback, **kwargs)
        expected = brute_force_samples(features, lookback, **kwargs)
        assert list(zip(samples.t.tolist(), samples.i.tolist(), strict=True)) == expected


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 3),
    lookback=st.integers(1, 12),
    start=st.integers(0, 45),
    end=st.none() | st.integers(0, 50),
    horizon=st.integers(0, 25),
    stride=st.integers(1, 7),
)
def test_valid_samples_range_purge_and_stride(seed, lookback, start, end, horizon, stride) -> None:
    features, labels, mask = planted_panel(seed)
    start = min(start, features.shape[0])
    samples = valid_samples(
        features,
        lookback,
        labels=labels,
        mask=mask,
        start=start,
        end=end,
        label_horizon=horizon,
        stride=stride,
    )
    expected = brute_force_samples(features, lookback, labels, mask, start, end, horizon, stride)
    assert list(zip(samples.t.tolist(), samples.i.tolist(), strict=True)) == expected
    last = features.shape[0] - 1 if end is None else min(end, features.shape[0] - 1)
    assert (samples.t + horizon <= last).all()  # purged: no label reaches past end
    assert (samples.t >= start).all() and ((samples.t - start) % stride == 0).all()


def test_valid_samples_purge_on_real_data(sp500) -> None:
    panel, features, labels = sp500
    end, horizon = 5000, 21
    samples = valid_samples(
        features, 60, labels=labels, mask=panel.mask, start=1000, end=end, label_horizon=horizon
    )
    assert samples.t.min() >= 1000 and samples.t.max() == end - horizon
    every = valid_samples(features, 60, labels=labels, mask=panel.mask)
    keep = (every.t >= 1000) & (every.t <= end - horizon)
    np.testing.assert_array_equal(samples.t, every.t[keep])
    np.testing.assert_array_equal(samples.i, every.i[keep])
    strided = valid_samples(features, 60, mask=panel.mask, start=1000, end=end, stride=5)
    assert set(np.unique(strided.t)) <= set(range(1000, end + 1, 5))


def test_valid_samples_rejects_bad_arguments() -> None:
    features, _, _ = planted_panel()
    with pytest.raises(ConfigError, match=r"\(T, N, F\)"):
        valid_samples(features[:, :, 0], 5)
    for kwargs in ({"lookback": 0}, {"stride": 0}, {"label_horizon": -1}, {"start": -1}):
        with pytest.raises(ConfigError):
            valid_samples(features, **({"lookback": 5} | kwargs))
    with pytest.raises(ConfigError):
        valid_samples(features, 5, start=features.shape[0] + 1)
    # empty results are fine: a window longer than the panel, a range past the end
    assert len(valid_samples(features, features.shape[0] + 1)) == 0
    assert len(valid_samples(features, 5, start=features.shape[0])) == 0
    assert len(valid_samples(features, 5, end=10, label_horizon=20)) == 0


# ----------------------------------------------------------------------------- batches
def dates_of(t: np.ndarray, positions: torch.Tensor) -> set[int]:
    return set(t[positions.numpy()].tolist())


@pytest.mark.parametrize("dates_per_batch", [1, 3, 8])
@pytest.mark.parametrize("shuffle", [True, False])
def test_date_batches_hold_whole_cross_sections(sp500, dates_per_batch, shuffle) -> None:
    panel, features, labels = sp500
    samples = valid_samples(features, 60, labels=labels, mask=panel.mask, start=7600)
    t = samples.t
    generator = torch.Generator().manual_seed(1)
    batches = list(date_batches(t, dates_per_batch, shuffle=shuffle, generator=generator))
    n_dates = samples.n_dates()
    assert len(batches) == -(-n_dates // dates_per_batch)
    for k, positions in enumerate(batches):
        assert positions.dtype == torch.int64
        chosen = dates_of(t, positions)
        expected_dates = dates_per_batch if k < len(batches) - 1 else n_dates - k * dates_per_batch
        assert len(chosen) == expected_dates
        # all the samples of those dates, and only those
        expected = np.flatnonzero(np.isin(t, list(chosen)))
        np.testing.assert_array_equal(np.sort(positions.numpy()), expected)
    everything = torch.cat(batches).numpy()
    np.testing.assert_array_equal(np.sort(everything), np.arange(len(samples)))
    order = [min(dates_of(t, b)) for b in batches]
    if shuffle:
        assert order != sorted(order)
    else:  # in date order, positions contiguous and ascending
        assert order == sorted(order)
        np.testing.assert_array_equal(everything, np.arange(len(samples)))


def test_date_batches_seeded_shuffle_is_reproducible() -> None:
    features, labels, mask = planted_panel(2)
    t = valid_samples(features, 3, labels=labels, mask=mask).t

    def epoch(seed: int) -> list[list[int]]:
        generator = torch.Generator().manual_seed(seed)
        return [b.tolist() for b in date_batches(t, 2, generator=generator)]

    assert epoch(5) == epoch(5)
    assert epoch(5) != epoch(6)
    # a torch tensor of dates works the same as a numpy array
    generator = torch.Generator().manual_seed(5)
    again = [b.tolist() for b in date_batches(torch.from_numpy(t), 2, generator=generator)]
    assert again == epoch(5)


def test_date_batches_edge_cases() -> None:
    assert list(date_batches(np.array([], dtype=np.int64), 3)) == []
    with pytest.raises(ConfigError, match="sorted"):
        list(date_batches(np.array([3, 1, 2]), 1))
    with pytest.raises(ConfigError):
        list(date_batches(np.array([1, 2]), 0))
    # one date: one batch with everything
    (only,) = date_batches(np.array([4, 4, 4]), 5)
    assert sorted(only.tolist()) == [0, 1, 2]


@pytest.mark.parametrize(("n", "batch_size"), [(0, 4), (1, 4), (10, 3), (64, 16), (1000, 128)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_random_batches_cover_every_sample_once(n: int, batch_size: int, drop_last: bool) -> None:
    batches = list(
        random_batches(
            n, batch_size, generator=torch.Generator().manual_seed(0), drop_last=drop_last
        )
    )
    sizes = [len(b) for b in batches]
    assert all(s == batch_size for s in sizes[:-1])
    if drop_last:
        assert sizes == [batch_size] * (n // batch_size)
        assert len(set(torch.cat(batches).tolist()) if batches else set()) == sum(sizes)
    else:
        assert sum(sizes) == n
        everything = torch.cat(batches) if batches else torch.empty(0, dtype=torch.int64)
        assert torch.equal(everything.sort().values, torch.arange(n))
    again = list(
        random_batches(
            n, batch_size, generator=torch.Generator().manual_seed(0), drop_last=drop_last
        )
    )
    assert all(torch.equal(a, b) for a, b in zip(batches, again, strict=True))
    with pytest.raises(ConfigError):
        list(random_batches(n, 0))


@pytest.mark.parametrize(
    ("by_date", "shuffle"), list(itertools.product([False, True], [False, True]))
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_window_dataset_batches_match_naive_gather(sp500, by_date, shuffle, dtype) -> None:
    panel, features, labels = sp500
    samples = valid_samples(features, 60, labels=labels, mask=panel.mask, start=8000)
    data = WindowDataset(features, samples, labels, dtype=dtype)
    assert len(data) == len(samples)
    values = torch.from_numpy(features).to(dtype)
    label_values = torch.from_numpy(labels)
    seen = []
    generator = torch.Generator().manual_seed(3)
    for x, y, positions in data.batches(
        256, by_date=by_date, dates_per_batch=4, shuffle=shuffle, generator=generator
    ):
        t = torch.from_numpy(samples.t)[positions]
        i = torch.from_numpy(samples.i)[positions]
        assert_same_bits(x, naive_windows(values, t, i, 60))
        assert_same_bits(y, label_values[t, i])
        assert y.dtype == torch.float32
        if by_date:
            assert len(set(t.tolist())) <= 4
        else:
            assert len(positions) <= 256
        seen.append(positions)
    everything = torch.cat(seen)
    assert torch.equal(everything.sort().values, torch.arange(len(samples)))
    if not shuffle:
        assert torch.equal(everything, torch.arange(len(samples)))


def test_window_dataset_without_labels() -> None:
    features, _, mask = planted_panel(1)
    samples = valid_samples(features, 4, mask=mask)
    data = WindowDataset(torch.from_numpy(features), samples)
    x, y = data.batch(torch.arange(len(samples)))
    assert y is None
    assert_same_bits(x, naive_windows(torch.from_numpy(features), samples.t, samples.i, 4))
    for x, y, _ in data.batches(7, shuffle=False):
        assert y is None and x.shape[1:] == (4, features.shape[-1])
