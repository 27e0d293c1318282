"""hippo_rs.torch modules: HiPPOCell vs a numpy loop, HiPPOMemory vs the cell, HiPPORNN, training."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import hippo_rs  # noqa: E402
import hippo_rs.torch as ht  # noqa: E402

F64 = torch.float64
CELL_MEASURES = ["legs", "legt", "lmu", "lagt", "glagt", "fout", "chebt"]


def _numpy_update(cell, c, f, t):
    """One memory update with ``hippo_rs.update`` (the numpy O(N) update): c (B, M, N), f (B, M)."""
    alpha = cell.gbt_alpha if cell.method == "gbt" else None
    kw = {"t": t} if cell.measure == "legs" else {"dt": cell.dt}
    return hippo_rs.update(c, f, measure=cell.measure, method=cell.method, gbt_alpha=alpha, convention=cell.convention,
                           **cell.params, **kw)


def _numpy_dense_step(cell, c, f, t):
    """One memory update with the dense numpy API: c (B, M, N), f (B, M), t = samples absorbed."""
    N = c.shape[-1]
    alpha = cell.gbt_alpha if cell.method == "gbt" else None
    if cell.measure == "legs":
        if t == 0:
            return f[..., None] * np.eye(N)[0]
        Ad, Bd = hippo_rs.legs_step_matrices(N, t=t, method=cell.method, gbt_alpha=alpha, convention=cell.convention)
    else:
        A, B = hippo_rs.transition(cell.measure, N, **cell.params)
        Ad, Bd = hippo_rs.discretize(A, B, dt=cell.dt, method=cell.method, gbt_alpha=alpha)
    return c @ Ad.T + f[..., None] * Bd


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


@pytest.mark.parametrize("measure", CELL_MEASURES)
@pytest.mark.parametrize("gate", [True, False])
@pytest.mark.parametrize("memory_update", [_numpy_dense_step, _numpy_update])
def test_cell_equals_numpy_loop(measure, gate, memory_update):
    torch.manual_seed(0)
    kw = {"alpha": 0.2, "beta": 0.5} if measure == "glagt" else {}
    method = "gbt" if measure == "lagt" else "bilinear"
    cell = ht.HiPPOCell(3, 5, memory_order=4, memory_size=2, measure=measure, gate=gate, method=method,
                        gbt_alpha=0.7 if method == "gbt" else None, **kw).double()
    L, B = 7, 2
    x = torch.randn(L, B, 3, dtype=F64)
    state = None
    W = {k: v.detach().numpy() for k, v in cell.named_parameters()}
    h = np.zeros((B, 5))
    c = np.zeros((B, 2, 4))
    for t in range(L):
        out, state = cell(x[t], state)
        xt = x[t].numpy()
        f = np.concatenate([xt, h], -1) @ W["W_f.weight"].T + W["W_f.bias"]
        c = memory_update(cell, c, f, t)
        xc = np.concatenate([xt, c.reshape(B, -1)], -1)
        h_new = np.tanh(xc @ W["W_h.weight"].T + W["W_h.bias"])
        if gate:
            g = _sigmoid(xc @ W["W_g.weight"].T + W["W_g.bias"])
            h_new = (1 - g) * h + g * h_new
        h = h_new
        np.testing.assert_allclose(out.detach().numpy(), h, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(state.c.detach().numpy(), c, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("convention", ["original", "paper"])
def test_timestamped_cell_equals_numpy_update_loop(convention):
    torch.manual_seed(5)
    cell = ht.HiPPOCell(2, 3, memory_order=5, memory_size=2, measure="tlegs", convention=convention).double()
    L, B = 6, 2
    x = torch.randn(L, B, 2, dtype=F64)
    ts = torch.cumsum(torch.rand(L, B, dtype=F64) + 0.1, 0)
    state = None
    W = {k: v.detach().numpy() for k, v in cell.named_parameters()}
    h, c = np.zeros((B, 3)), np.zeros((B, 2, 5))
    for k in range(L):
        out, state = cell(x[k], state, ts[k])
        xk = x[k].numpy()
        f = np.concatenate([xk, h], -1) @ W["W_f.weight"].T + W["W_f.bias"]
        if k == 0:  # nothing absorbed yet: the first sample initialises c = f e0
            c = hippo_rs.update(c, f, measure="legs", t=0, convention=convention)
        else:  # per-row times, broadcast over the memory units
            c = hippo_rs.update(c, f, measure="legs", timestamps=ts[k, :, None].numpy(), t_prev=ts[k - 1, :, None].numpy(),
                                convention=convention)
        xc = np.concatenate([xk, c.reshape(B, -1)], -1)
        g = _sigmoid(xc @ W["W_g.weight"].T + W["W_g.bias"])
        h = (1 - g) * h + g * np.tanh(xc @ W["W_h.weight"].T + W["W_h.bias"])
        np.testing.assert_allclose(out.detach().numpy(), h, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(state.c.detach().numpy(), c, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("measure", CELL_MEASURES + ["tlegs"])
@pytest.mark.parametrize("convention", ["original", "paper"])
def test_memory_equals_cell_memory_stepwise(measure, convention):
    """HiPPOMemory (the scan op) equals the cell's memory update run step by step."""
    torch.manual_seed(1)
    kw = dict(memory_order=6, convention=convention)
    cell = ht.HiPPOCell(2, 3, memory_size=2, measure=measure, **kw)
    memory = ht.HiPPOMemory(measure=measure, **kw)
    L, B = 9, 3
    f = torch.randn(L, B, 2, dtype=F64)
    ts = None
    if measure == "tlegs":
        ts = torch.cumsum(torch.rand(L, B, dtype=F64) + 0.1, 0)
        ts[0, 0] = 0.0  # a stream may start at time 0 (a reset either way: nothing absorbed before)
    _, c, t = cell.initial_state(B, F64)
    steps = []
    for k in range(L):
        c, t = cell.memory_step(c, f[k], t, None if ts is None else ts[k])
        steps.append(c)
    got = memory(f, timestamps=None if ts is None else ts[..., None])
    torch.testing.assert_close(got, torch.stack(steps))
    # batch_first and return_all=False
    mem_bf = ht.HiPPOMemory(measure=measure, batch_first=True, **kw)
    got_bf = mem_bf(f.transpose(0, 1), timestamps=None if ts is None else ts.T[..., None])
    torch.testing.assert_close(got_bf, torch.stack(steps, 1))
    last = memory(f, timestamps=None if ts is None else ts[..., None], return_all=False)
    torch.testing.assert_close(last, steps[-1])


def test_legs_never_clamps():
    """The step index is a state: at t = 10**6 the update is the dense LegS step there."""
    N = 8
    c = torch.randn(2, 1, N, dtype=F64)
    f = torch.randn(2, 1, dtype=F64)
    t = 10**6
    Ad, Bd = hippo_rs.legs_step_matrices(N, t=t)
    got = ht.update(c, f, t=t)
    want = c.numpy() @ Ad.T + f.numpy()[..., None] * Bd
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-14)
    cell = ht.HiPPOCell(1, 4, memory_order=N).double()
    state = cell.initial_state(2)
    state = ht.HiPPOState(state.h, c, torch.full((2,), float(t), dtype=F64))
    _, new = cell(torch.zeros(2, 1, dtype=F64), state)
    assert torch.equal(new.t, torch.full((2,), t + 1.0, dtype=F64))


@pytest.mark.parametrize("name", ["legs", "tlegs", "lmu", "lstm", "gru", "rnn"])
def test_rnn_lengths_and_batch_first(name):
    torch.manual_seed(2)
    rnn = ht.HiPPORNN(name, 3, 5)
    L, B = 8, 3
    x = torch.randn(L, B, 3)
    ts = torch.arange(L, dtype=F64)[:, None].expand(L, B) * 0.5
    lengths = torch.tensor([8, 5, 2])
    y, state = rnn(x, lengths=lengths, timestamps=ts)
    assert y.shape == (L, B, 5)
    for b in range(B):
        n = int(lengths[b])
        yb, sb = rnn(x[:n, b : b + 1], timestamps=ts[:n, b : b + 1])
        torch.testing.assert_close(y[:n, b], yb[:, 0])
        assert torch.all(y[n:, b] == 0)
        for s_full, s_b in zip(state, sb):
            torch.testing.assert_close(s_full[b : b + 1], s_b)
    rnn_bf = ht.HiPPORNN(rnn.cell, batch_first=True)
    y_bf, _ = rnn_bf(x.transpose(0, 1), lengths=lengths, timestamps=ts.T)
    torch.testing.assert_close(y_bf, y.transpose(0, 1))
    # continuing from the final state equals one pass over the sequence
    y1, s1 = rnn(x[:4], timestamps=ts[:4])
    y2, s2 = rnn(x[4:], s1, timestamps=ts[4:])
    y_all, s_all = rnn(x, timestamps=ts)
    torch.testing.assert_close(torch.cat((y1, y2)), y_all)
    for a, b in zip(s2, s_all):
        torch.testing.assert_close(a, b)


def test_rnn_lengths_with_padded_timestamps():
    """Timestamps past a row's length (padding: zeros here) are never checked or used."""
    torch.manual_seed(4)
    rnn = ht.HiPPORNN("tlegs", 2, 4)
    x = torch.randn(6, 2, 2)
    ts = torch.tensor([[0.0, 0.5], [0.7, 0.9], [1.5, 2.0], [2.0, 0.0], [2.5, 0.0], [3.0, 0.0]], dtype=F64)
    y, state = rnn(x, lengths=torch.tensor([6, 3]), timestamps=ts)
    y1, s1 = rnn(x[:3, 1:], timestamps=ts[:3, 1:, None])  # (L, B, 1) is accepted too
    torch.testing.assert_close(y[:3, 1], y1[:, 0])
    for a, b in zip(state, s1):
        torch.testing.assert_close(a[1:], b)


def test_make_cell_and_constructor_errors():
    assert set(ht.CELLS) >= {"legs", "tlegs", "legt", "lmu", "lagt", "glagt", "lstm", "gru"}
    cell = ht.make_cell("lmu", 2, 4, memory_order=3, memory_size=2)
    assert cell.params == {"theta": 100.0} and cell.dt == 1.0
    assert ht.make_cell("tlegs", 2, 4).timestamped
    with pytest.raises(ValueError, match="name:"):
        ht.make_cell("transformer", 2, 4)
    with pytest.raises(ValueError, match="measure:"):
        ht.HiPPOCell(2, 4, measure="legx")
    with pytest.raises(ValueError, match="theta:"):
        ht.HiPPOCell(2, 4, measure="lagt", theta=3.0)
    with pytest.raises(ValueError, match="method:"):
        ht.HiPPOCell(2, 4, method="zoh")
    with pytest.raises(ValueError, match="timestamp:"):
        ht.HiPPOCell(2, 4, measure="tlegs")(torch.zeros(1, 2))
    with pytest.raises(TypeError, match="cell:"):
        ht.HiPPORNN(3)


def test_gradcheck_cell_timestamped():
    torch.manual_seed(3)
    cell = ht.HiPPOCell(2, 3, memory_order=4, measure="tlegs").double()
    x = torch.randn(4, 2, 2, dtype=F64, requires_grad=True)
    ts = torch.tensor([0.0, 0.3, 1.1, 1.5], dtype=F64)[:, None].expand(4, 2)

    def run(x):
        return ht.HiPPORNN(cell)(x, timestamps=ts)[0]

    assert torch.autograd.gradcheck(run, (x,))


def _adding_batch(L, B, gen):
    """Adding problem (Hochreiter & Schmidhuber 1997): sum the two marked values of a sequence."""
    values = torch.rand(L, B, generator=gen)
    marks = torch.zeros(L, B)
    i = torch.randint(0, L // 2, (B,), generator=gen)
    j = torch.randint(L // 2, L, (B,), generator=gen)
    marks[i, torch.arange(B)] = 1.0
    marks[j, torch.arange(B)] = 1.0
    return torch.stack((values, marks), -1), (values * marks).sum(0)


def test_training_learns_the_adding_task():
    """HiPPO-LegS RNN on the adding problem, L = 100: the validation MSE falls from its start (~1.4)
    far below that of the best constant prediction (1/6, the variance of the sum of two U(0, 1))."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    L, B, H = 100, 32, 32
    rnn = ht.HiPPORNN("legs", 2, H, memory_order=H)
    head = torch.nn.Linear(H, 1)
    opt = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=3e-2)
    x_val, y_val = _adding_batch(L, 256, gen)

    def val_loss():
        with torch.no_grad():
            y, _ = rnn(x_val)
            return torch.nn.functional.mse_loss(head(y[-1]).squeeze(-1), y_val).item()

    start = val_loss()
    for it in range(1, 401):
        x, target = _adding_batch(L, B, gen)
        y, _ = rnn(x)
        loss = torch.nn.functional.mse_loss(head(y[-1]).squeeze(-1), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it % 25 == 0 and it >= 150 and val_loss() < 0.05:
            break
    final = val_loss()
    assert start > 1.0 and final < 0.05, (start, final, it)


def test_rnn_input_and_lengths_are_checked_like_torch_rnn():
    """The wrong number of features names input_size (as torch.nn.LSTM does); a length beyond the
    sequence, a negative one or a float tensor of lengths is an error, not silently clamped."""
    rnn = ht.HiPPORNN("legs", 3, 16)
    with pytest.raises(ValueError, match="input_size = 3"):
        rnn(torch.randn(5, 2, 4))
    with pytest.raises(ValueError, match="input_size"):
        rnn(torch.randn(5, 3))
    with pytest.raises(TypeError, match="input"):
        rnn(np.zeros((5, 2, 3), np.float32))
    x = torch.randn(5, 2, 3)
    for bad in ([6, 5], [-1, 2]):
        with pytest.raises(ValueError, match="lengths: expected 0 <= lengths <= 5"):
            rnn(x, lengths=torch.tensor(bad))
    with pytest.raises(TypeError, match="lengths"):
        rnn(x, lengths=torch.tensor([5.0, 2.0]))
    y, _ = rnn(x, lengths=torch.tensor([5, 0]))
    assert y.shape == (5, 2, 16) and not y[:, 1].any()
