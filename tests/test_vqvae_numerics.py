"Numerics of naruto_core.vqvae against hand-written references (EMA update, straight-through, restarts, PSNR, DDP)."
import math
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from naruto_core.vqvae import VectorQuantizerEMA, VectorQuantizer, nearest_code, psnr, codebook_stats


def _as_grid(vectors):
    "(N, D) -> (1, D, 1, N): one image whose N cells are the given vectors."
    return vectors.t().unsqueeze(0).unsqueeze(2).contiguous()


def _quantizer(K=3, D=2, **kw):
    kw = dict(decay=0.9, eps=1e-5, beta=0.25, data_init=False, restart_dead=False, dead_threshold=1.0) | kw
    return VectorQuantizerEMA(K, D, **kw)


def test_ema_update_matches_reference():
    q = _quantizer()
    embed = torch.tensor([[0., 0.], [10., 0.], [0., 10.]])
    cs = torch.tensor([2.0, 1.0, 0.5])
    q.embed.copy_(embed); q.cluster_size.copy_(cs); q.embed_avg.copy_(embed * cs[:, None])
    z = torch.tensor([[1., 0.], [-1., 0.5], [9., 1.], [11., -1.], [12., 0.]])  # -> codes 0, 0, 1, 1, 1; code 2 unused
    q.train()
    z_q, idx, loss = q(_as_grid(z))
    assert idx.flatten().tolist() == [0, 0, 1, 1, 1]
    # z_q uses the codebook before the update
    torch.testing.assert_close(z_q[0, :, 0].t(), embed[[0, 0, 1, 1, 1]])
    torch.testing.assert_close(loss, 0.25 * ((z - embed[[0, 0, 1, 1, 1]]) ** 2).mean())
    # the reference, written out with Python floats
    g, eps, K = 0.9, 1e-5, 3
    n = [2, 3, 0]
    s = [[0.0, 0.5], [32.0, 0.0], [0.0, 0.0]]
    N = [g * c + (1 - g) * k for c, k in zip(cs.tolist(), n)]
    m = [[g * e * c + (1 - g) * si for e, si in zip(row, srow)] for row, c, srow in zip(embed.tolist(), cs.tolist(), s)]
    tot = sum(N)
    Ns = [(x + eps) / (tot + K * eps) * tot for x in N]
    e_new = [[v / ns for v in row] for row, ns in zip(m, Ns)]
    torch.testing.assert_close(q.cluster_size, torch.tensor(N), rtol=0, atol=1e-6)
    torch.testing.assert_close(q.embed_avg, torch.tensor(m), rtol=0, atol=1e-5)
    torch.testing.assert_close(q.embed, torch.tensor(e_new), rtol=1e-6, atol=1e-6)
    assert q.last_dead == 1  # code 2: 0.9 * 0.5 = 0.45 < 1


def test_straight_through_gradient():
    torch.manual_seed(0)
    for q in (VectorQuantizerEMA(8, 4, data_init=False), VectorQuantizer(8, 4)):
        for mode in (q.train, q.eval):
            mode()
            z = torch.randn(2, 4, 3, 3, requires_grad=True)
            z_q, _, _ = q(z)
            z_q.retain_grad()
            w = torch.randn_like(z_q)
            (z_q * w).sum().backward()
            torch.testing.assert_close(z.grad, z_q.grad, rtol=0, atol=0)
            torch.testing.assert_close(z.grad, w, rtol=0, atol=0)


def test_commit_loss_gradient_reaches_encoder_only():
    q = VectorQuantizerEMA(8, 4, data_init=False).eval()
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    z_q, _, loss = q(z)
    loss.backward()
    torch.testing.assert_close(z.grad, 0.25 * 2 * (z - z_q).detach() / z.numel())


@pytest.mark.parametrize('data_init', [True, False])
def test_eval_mode_leaves_buffers_bit_identical(data_init):
    torch.manual_seed(0)
    q = VectorQuantizerEMA(16, 4, data_init=data_init, restart_dead=True)
    if data_init:  # one training step first, so the codebook is initialised and has some dead codes
        q.train(); q(torch.randn(2, 4, 4, 4) * 3)
    q.eval()
    before = {k: v.clone() for k, v in q.state_dict().items()}
    for _ in range(3): q(torch.randn(2, 4, 4, 4) * 3 + 5)
    after = q.state_dict()
    assert before.keys() == after.keys()
    for k in before: assert torch.equal(before[k], after[k]), k
    # and in eval mode the quantiser draws nothing from the RNG
    x = torch.randn(1, 4, 2, 2) * 3
    rng = torch.get_rng_state(); q(x)
    assert torch.equal(torch.get_rng_state(), rng)


def test_eval_mode_without_init_stays_uninitialised():
    q = VectorQuantizerEMA(16, 4, data_init=True).eval()
    embed = q.embed.clone()
    q(torch.randn(2, 4, 4, 4))
    assert not bool(q.initted) and torch.equal(q.embed, embed)


def test_dead_code_restart_moves_dead_codes_to_encoder_outputs():
    torch.manual_seed(0)
    q = _quantizer(K=4, restart_dead=True, dead_threshold=1.0)
    embed = torch.tensor([[0., 0.], [10., 0.], [100., 100.], [-100., 100.]])  # codes 2, 3 are far from the data
    cs = torch.tensor([5.0, 5.0, 1.05, 0.5])  # code 2 is alive until it decays (0.9*1.05 < 1), code 3 dead
    q.embed.copy_(embed); q.cluster_size.copy_(cs); q.embed_avg.copy_(embed * cs[:, None])
    z = torch.randn(20, 2) * 0.3 + torch.tensor([5., 0.])
    q.train()
    q(_as_grid(z))
    assert q.last_dead == 2
    for k in (2, 3):
        assert (q.embed[k] == z).all(1).any(), f"code {k} was not moved onto an encoder output"
        assert q.cluster_size[k].item() == 1.0
        torch.testing.assert_close(q.embed_avg[k], q.embed[k] * 1.0)
    assert not torch.equal(q.embed[2], q.embed[3])   # drawn without replacement
    # live codes follow the EMA, not a restart
    assert q.cluster_size[0].item() > 1 and q.cluster_size[1].item() > 1
    # a restart draws from torch's RNG only: same seed, same codes
    torch.manual_seed(0)
    q2 = _quantizer(K=4, restart_dead=True)
    q2.embed.copy_(embed); q2.cluster_size.copy_(cs); q2.embed_avg.copy_(embed * cs[:, None])
    z2 = torch.randn(20, 2) * 0.3 + torch.tensor([5., 0.])
    q2.train(); q2(_as_grid(z2))
    assert torch.equal(q.embed, q2.embed)


def test_data_init_with_fewer_vectors_than_codes():
    torch.manual_seed(0)
    q = VectorQuantizerEMA(64, 3, data_init=True, restart_dead=False).train()
    z = torch.randn(10, 3) * 4 + 7
    q(_as_grid(z))
    assert bool(q.initted)
    # before the EMA step every code was one of the 10 vectors; after it each code is a convex-ish mix close to one
    assert torch.cdist(q.embed, z).min(1).values.max() < 0.5


def test_quantizer_picks_the_nearest_code():
    torch.manual_seed(0)
    K, D = 300, 8
    q = VectorQuantizerEMA(K, D, data_init=False).eval()
    z = torch.randn(4, D, 25, 25)
    _, idx, _ = q(z)
    flat = z.permute(0, 2, 3, 1).reshape(-1, D)
    brute = ((flat[:, None, :] - q.embed[None]) ** 2).sum(-1).argmin(1)
    assert torch.equal(idx.flatten(), brute)
    assert torch.equal(nearest_code(flat, q.embed, max_elems=K * 7), brute)  # 7 rows per chunk


def test_psnr():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 8, 8) * 1.6 - 0.8
    p = psnr(x, x)
    assert p.shape == (3,) and (torch.isinf(p) | (p > 100)).all()
    noise = torch.randn_like(x) * 0.05
    mse01 = ((noise / 2) ** 2).flatten(1).mean(1)          # the error in [0, 1] units
    torch.testing.assert_close(psnr(x, x + noise), 10 * torch.log10(1 / mse01), rtol=1e-4, atol=1e-4)
    assert abs(psnr(torch.full((1, 3, 4, 4), -1.), torch.full((1, 3, 4, 4), 1.)).item() - 0.0) < 1e-6


def test_codebook_stats():
    s = codebook_stats(torch.tensor([0, 1, 2, 3]), 8)
    assert math.isclose(s['perplexity'], 4, rel_tol=1e-6) and s['usage'] == 0.5
    s = codebook_stats(torch.tensor([5, 5, 5]), 8)
    assert math.isclose(s['perplexity'], 1, rel_tol=1e-6) and s['usage'] == 1 / 8


# --- DDP: two gloo ranks with different batches keep one codebook, equal to one process on both batches ---

def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def _ddp_worker(rank, world, port, batches, out):
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        q = VectorQuantizerEMA(8, 2, decay=0.9, data_init=False, restart_dead=False).train()
        for b in batches[rank]: q(_as_grid(b))
        torch.manual_seed(100 + rank)  # different RNG streams: init and restarts must still agree
        q2 = VectorQuantizerEMA(8, 2, data_init=True, restart_dead=True).train()
        for b in batches[rank]: q2(_as_grid(b))
        out[rank] = (q.embed.clone(), q.cluster_size.clone(), q2.embed.clone(), q2.cluster_size.clone())
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not torch.distributed.is_available(), reason='no torch.distributed')
def test_ddp_ranks_keep_identical_codebooks():
    torch.manual_seed(1)
    batches = [[torch.randn(12, 2) * 3 for _ in range(3)] for _ in range(2)]
    out = mp.Manager().dict()
    mp.spawn(_ddp_worker, args=(2, _free_port(), batches, out), nprocs=2, join=True)
    (e0, c0, f0, d0), (e1, c1, f1, d1) = out[0], out[1]
    assert torch.equal(e0, e1) and torch.equal(c0, c1)
    assert torch.equal(f0, f1) and torch.equal(d0, d1)
    torch.manual_seed(0)
    ref = VectorQuantizerEMA(8, 2, decay=0.9, data_init=False, restart_dead=False).train()
    for b0, b1 in zip(*batches): ref(_as_grid(torch.cat([b0, b1])))
    torch.testing.assert_close(e0, ref.embed, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(c0, ref.cluster_size, rtol=1e-6, atol=1e-6)
