"""hippo_rs.Memory: chunked streaming equals one scan; persistence round trips; reconstruction."""

import copy
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hippo_rs


SETUPS = [
    ("legs", {}, "original"),
    ("legs", {}, "paper"),
    ("legt", {"theta": 40.0}, "original"),
    ("lmu", {"theta": 25.0}, "original"),
    ("lagt", {"beta": 0.5}, "original"),
    ("glagt", {"alpha": 0.3, "beta": 0.5}, "original"),
]


def signal(L, batch=(), seed=0):
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.standard_normal((L,) + batch), axis=0) / np.sqrt(L)


def one_scan(measure, params, convention, x, N, dtype, dt=None, timestamps=None):
    kwargs = dict(method="bilinear", return_all=False, convention=convention, **params)
    if measure != "legs":
        kwargs["dt"] = 1.0 if (dt is None or timestamps is not None) else dt
    if timestamps is not None:
        kwargs["timestamps"] = timestamps
        if measure != "legs":
            kwargs["t_prev"] = timestamps[0] - (1.0 if dt is None else dt)
    return hippo_rs.scan(x.astype(dtype), N, measure=measure, **kwargs)


@settings(max_examples=25, deadline=None)
@given(
    setup=st.sampled_from(SETUPS),
    cuts=st.lists(st.integers(0, 60), max_size=6),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_chunked_updates_equal_one_scan(setup, cuts, dtype):
    measure, params, convention = setup
    L, N, batch = 60, 12, (2, 3)
    x = signal(L, batch)
    mem = hippo_rs.Memory(N, measure=measure, dtype=dtype, batch_shape=batch, convention=convention, **params)
    bounds = [0] + sorted(cuts) + [L]
    for a, b in zip(bounds[:-1], bounds[1:]):
        mem.update(x[a:b])
    want = one_scan(measure, params, convention, x, N, dtype)
    assert mem.state.dtype == dtype and mem.state.shape == batch + (N,)
    assert mem.t == L
    np.testing.assert_array_equal(mem.state, want)


@settings(max_examples=15, deadline=None)
@given(setup=st.sampled_from(SETUPS[::2]), cuts=st.lists(st.integers(0, 40), max_size=4), seed=st.integers(0, 99))
def test_timestamped_chunks_equal_one_scan(setup, cuts, seed):
    measure, params, convention = setup
    L, N = 40, 10
    rng = np.random.default_rng(seed)
    ts = np.cumsum(rng.uniform(0.2, 2.0, L))
    x = signal(L, (), seed)
    mem = hippo_rs.Memory(N, measure=measure, dtype=np.float64, convention=convention, **params)
    bounds = [0] + sorted(cuts) + [L]
    for a, b in zip(bounds[:-1], bounds[1:]):
        mem.update(x[a:b], timestamps=ts[a:b])
    np.testing.assert_array_equal(mem.state, one_scan(measure, params, convention, x, N, np.float64, timestamps=ts))
    assert mem.t == ts[-1] and mem.count == L


def test_single_samples_and_dt():
    x = signal(30)
    a = hippo_rs.Memory(8, measure="legt", dtype=np.float64, dt=0.1, theta=2.0)
    for v in x:
        a.update(v)  # one sample of shape batch_shape = ()
    np.testing.assert_array_equal(a.state, one_scan("legt", {"theta": 2.0}, "original", x, 8, np.float64, dt=0.1))
    assert a.t == 30 and a.time == pytest.approx(2.9) and a.window == pytest.approx((0.9, 2.9))
    np.testing.assert_allclose(a.grid(), np.arange(9, 30) * 0.1)


def test_state_dict_and_pickle_round_trips_continue_the_stream():
    x = signal(80, (3,))
    full = hippo_rs.Memory(16, measure="legs", batch_shape=(3,)).update(x)
    half = hippo_rs.Memory(16, measure="legs", batch_shape=(3,)).update(x[:50])
    # The same chunks: the same bits. One call of 80 steps takes the single-row form of the step
    # (hippo_rs.scan): equal to a few float32 roundings per step and element.
    chunks = hippo_rs.Memory(16, measure="legs", batch_shape=(3,)).update(x[:50]).update(x[50:])
    tol = 4 * len(x) * 16 * np.finfo(np.float32).eps * np.abs(full.state).max()
    np.testing.assert_allclose(chunks.state, full.state, rtol=0, atol=tol)
    for restored in (
        pickle.loads(pickle.dumps(half)),
        copy.deepcopy(half),
        hippo_rs.Memory.from_state_dict(half.state_dict()),
        hippo_rs.Memory(16, measure="legs", batch_shape=(3,)).load_state_dict(half.state_dict()),
    ):
        assert restored.t == 50
        np.testing.assert_array_equal(restored.state, half.state)
        restored.update(x[50:])
        np.testing.assert_array_equal(restored.state, chunks.state)
    # the original is untouched by its copies
    assert half.t == 50


def test_load_state_dict_checks_the_configuration():
    d = hippo_rs.Memory(16, measure="legs").update(signal(5)).state_dict()
    with pytest.raises(ValueError, match="'N'"):
        hippo_rs.Memory(8, measure="legs").load_state_dict(d)
    with pytest.raises(ValueError, match="'dtype'"):
        hippo_rs.Memory(16, measure="legs", dtype=np.float64).load_state_dict(d)
    with pytest.raises(ValueError, match="missing"):
        hippo_rs.Memory(16, measure="legs").load_state_dict({"N": 16})


def test_load_state_dict_checks_measure_and_format():
    d = hippo_rs.Memory(16, measure="legs").update(signal(5)).state_dict()
    assert d["format"] == hippo_rs.memory.STATE_FORMAT
    with pytest.raises(ValueError, match="'measure'"):
        hippo_rs.Memory(16, measure="legt", dt=0.1).load_state_dict(d)
    newer = {**d, "format": hippo_rs.memory.STATE_FORMAT + 1}
    for load in (hippo_rs.Memory(16).load_state_dict, hippo_rs.Memory.from_state_dict, pickle_round_trip):
        with pytest.raises(ValueError, match="format .* newer hippo_rs"):
            load(newer)
    with pytest.raises(ValueError, match="'format'"):
        hippo_rs.Memory(16).load_state_dict({**d, "format": "1"})
    with pytest.raises(TypeError, match="state_dict"):
        hippo_rs.Memory.from_state_dict([("N", 16)])


def pickle_round_trip(d):
    """Unpickling runs __setstate__ on the dict a pickle of a Memory holds."""
    mem = hippo_rs.Memory.__new__(hippo_rs.Memory)
    mem.__setstate__(d)
    return mem


STATE_V1 = Path(__file__).parent / "data" / "memory_state_format1.json"


def saved_state(path):
    """A state_dict saved as JSON (the state as nested lists; floats round-trip exactly)."""
    return json.loads(path.read_text())


def test_a_state_saved_in_format_1_loads_and_continues():
    """A committed state of format 1 (LegT, float64, batch (2,), after 40 samples): this version and
    every later one must load it and continue the stream exactly as the memory that saved it."""
    d = saved_state(STATE_V1)
    assert d["format"] == 1
    x = signal(60, (2,)).astype(np.float64)
    restored = hippo_rs.Memory.from_state_dict(d)
    assert restored.t == 40
    full = hippo_rs.Memory(12, measure="legt", dtype=np.float64, batch_shape=(2,), dt=0.05, theta=1.5).update(x)
    np.testing.assert_allclose(restored.update(x[40:]).state, full.state, rtol=1e-12, atol=1e-12)
    legacy = {k: v for k, v in d.items() if k != "format"}  # hippo_rs 0.1 wrote no format key
    assert hippo_rs.Memory.from_state_dict(legacy).t == 40


def test_reset_and_reconstruction():
    mem = hippo_rs.Memory(32, measure="legs", dtype=np.float64)
    mem.update(np.full(100, 0.7))
    np.testing.assert_allclose(mem.reconstruct(), 0.7, atol=1e-12)  # a constant is exact for LegS
    assert mem.reconstruct().shape == (100,)
    mem.reset()
    assert mem.t == 0 and not mem.state.any()
    with pytest.raises(ValueError, match="time"):
        mem.reconstruct()
    # a smooth signal is remembered over the whole history
    x = np.sin(np.linspace(0, 6, 2000))
    mem.update(x[:700]).update(x[700:])
    assert np.max(np.abs(mem.reconstruct() - x)) < 1e-2


def test_batched_reconstruction_shape():
    mem = hippo_rs.Memory(8, measure="lmu", batch_shape=(2, 3), theta=10.0).update(signal(20, (2, 3)))
    assert mem.reconstruct().shape == (2, 3, 11)  # samples 9..19 in [t - theta, t]
    assert mem.reconstruct([19.0, 15.5]).shape == (2, 3, 2)
    assert mem.reconstruct().dtype == np.float32


@pytest.mark.parametrize(
    "make,feed,exc,word",
    [
        (
            lambda: hippo_rs.Memory(4, measure="legs", batch_shape=(2,)),
            lambda m: m.update(np.zeros((5, 3))),
            ValueError,
            "chunk",
        ),
        (lambda: hippo_rs.Memory(4, measure="legs"), lambda m: m.update(np.array(["a"])), TypeError, "chunk"),
        (
            lambda: hippo_rs.Memory(4, measure="legs").update(np.zeros(3)),
            lambda m: m.update(np.zeros(2), timestamps=[5.0, 6.0]),
            ValueError,
            "timestamps",
        ),
        (
            lambda: hippo_rs.Memory(4, measure="legs"),
            lambda m: m.update(np.zeros(2), timestamps=[1.0, 1.0]),
            ValueError,
            "timestamps",
        ),
        (
            lambda: hippo_rs.Memory(4, measure="legs"),
            lambda m: m.update(np.zeros(2), timestamps=[1.0]),
            ValueError,
            "timestamps",
        ),
        (lambda: hippo_rs.Memory(0, measure="legs"), None, ValueError, "N"),
        (lambda: hippo_rs.Memory(4, measure="legt", theta=-1.0), None, ValueError, "theta"),
        (lambda: hippo_rs.Memory(4, measure="legs", dtype=np.int32), None, TypeError, "dtype"),
        (lambda: hippo_rs.Memory(4, measure="legs", dt=0.0), None, ValueError, "dt"),
        (lambda: hippo_rs.Memory(4, measure="nope"), None, ValueError, "measure"),
    ],
)
def test_errors_name_the_argument(make, feed, exc, word):
    with pytest.raises(exc, match=f"^{word}"):
        m = make()
        feed(m)


def test_irregular_sampling_through_timestamps():
    # LegS with timestamps remembers an irregularly sampled smooth signal over [0, last timestamp].
    rng = np.random.default_rng(7)
    ts = np.sort(rng.uniform(0.0, 20.0, 3000))
    ts[0] = 0.0
    f = lambda t: np.sin(t) + 0.3 * np.cos(2.3 * t)  # noqa: E731
    mem = hippo_rs.Memory(48, measure="legs", dtype=np.float64)
    for chunk in np.array_split(np.arange(ts.size), 5):
        mem.update(f(ts[chunk]), timestamps=ts[chunk])
    assert mem.t == ts[-1] and mem.window == (0.0, ts[-1])
    grid = mem.grid()
    assert grid[0] == 0.0 and grid[-1] == ts[-1]
    assert np.max(np.abs(mem.reconstruct(grid) - f(grid))) < 2e-2
