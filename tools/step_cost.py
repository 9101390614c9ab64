#!/usr/bin/env python
"""Where CFTN v2's training step spends its time beside CFTN's: the step alone (no loader, no trainer), paired and alternating.

    OMP_NUM_THREADS=1 taskset -c 0 python tools/step_cost.py --run runs/r37/tw_2b/runs/cftn2_2B_seed0 --vqvae runs/twemoji/vqvae --out step_cost.json

Each model does the package's own loss (`GeneratorLoss`, as the trainer builds it), backward, clipping and AdamW step
on the same real batches (captions of the run's tokenizer, codes of the VQ-VAE's cache). CFTN v2 is timed in each
curriculum stage apart, and once more with its bridges' strengths and gates neither computed nor logged (what the logs
cost). Every round times each model for `--steps` steps in turn, in alternating order; the ratios to CFTN's median
step are taken within a round. `tools/step_ratio.py` times the whole trainer; this one times the step. Run it alone.
Each model runs a block of steps, so the machine's drift within a round is not paired out: differences of a few
percent (what the logs cost, say) change sign from round to round at the defaults, and are not resolved by them.
"""
import argparse, json, os, statistics, sys, time
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('HF_DATASETS_OFFLINE', '1'); os.environ.setdefault('WANDB_MODE', 'disabled')


def step_fn(name, overrides, space, batches, preset, logs=True):
    "One training step of generator `name` (the preset with `overrides`) on the next of `batches`; `logs=False`: no strengths, no gates."
    import torch
    from torch import nn
    from naruto_core.config import load_config
    from naruto_core.curriculum import GeneratorLoss
    from naruto_core.generators import make_generator
    from naruto_core.training import make_optimizer
    c = load_config(preset, list(overrides)); torch.manual_seed(0)
    m = make_generator(name, c.gen, space).train()
    if not logs:
        if c.gen.dropout: raise SystemExit('timing without the logs needs gen.dropout=0: a bridge out of training mode (no strength) drops nothing')
        for _, b in m._bridges(): b.train(False)                   # a bridge out of training mode computes no strength
    opt, loss_fn, n = make_optimizer(m, c.train_gen), GeneratorLoss(c.gen, space, log_gates=logs), [0]
    def step():
        loss, _ = loss_fn(m, batches[n[0] % len(batches)], n[0]); n[0] += 1
        opt.zero_grad(set_to_none=True); loss.backward()
        if c.train_gen.grad_clip: nn.utils.clip_grad_norm_(m.parameters(), c.train_gen.grad_clip)
        opt.step()
    return step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--run', required=True, help='a trained generator run: its token space and tokenizer')
    p.add_argument('--vqvae', required=True, help='the VQ-VAE run whose cached codes the batches come from')
    p.add_argument('--preset', default='cpu'); p.add_argument('--batch', type=int, default=32)
    p.add_argument('--rounds', type=int, default=5); p.add_argument('--steps', type=int, default=15, help='timed steps per model per round')
    p.add_argument('--out', default=None)
    a = p.parse_args(argv)
    import torch
    from naruto_core.blocks import TokenSpace
    from naruto_core.codes import CodesDataset
    from naruto_core.stage2 import TokenizedCodes
    from naruto_core.tokenizer import load_tokenizer
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1')))
    space = TokenSpace(**json.loads((Path(a.run)/'generator.json').read_text())['space'])
    ds = TokenizedCodes(CodesDataset(a.vqvae, 'train'), load_tokenizer(Path(a.run)/'tokenizer'), space.text_len)
    g = torch.Generator().manual_seed(0)
    batches = [tuple(torch.stack(x) for x in zip(*[ds[int(i)] for i in torch.randint(len(ds), (a.batch,), generator=g)])) for _ in range(8)]
    a2, b2 = ['gen.stage=2A', 'gen.switch_step=0'], ['gen.stage=2B', 'gen.switch_step=0']
    models = {'cftn': step_fn('cftn', [], space, batches, a.preset),
              'cftn2_2B': step_fn('cftn2', b2, space, batches, a.preset), 'cftn2_2A': step_fn('cftn2', a2, space, batches, a.preset),
              'cftn2_2B_nologs': step_fn('cftn2', b2, space, batches, a.preset, logs=False),
              'cftn2_2A_nologs': step_fn('cftn2', a2, space, batches, a.preset, logs=False)}
    for f in models.values():
        for _ in range(5): f()                                     # warm-up
    rounds = []
    for i in range(a.rounds):
        r = {}
        for k in (list(models) if i % 2 == 0 else list(models)[::-1]):
            ts = []
            for _ in range(a.steps):
                t = time.perf_counter(); models[k](); ts.append(time.perf_counter() - t)
            r[k] = statistics.median(ts)
        rounds.append(r); print(json.dumps({k: round(1000 * v, 1) for k, v in r.items()}), file=sys.stderr)
    from naruto_core.config import load_config
    c = load_config(a.preset, []); share = min(1.0, c.gen.switch_step / c.train_gen.max_steps)   # stage 2A's share of the preset's steps
    ratio = {k: statistics.median(r[k] / r['cftn'] for r in rounds) for k in models}
    for sfx in ('', '_nologs'):
        ratio['cftn2_preset' + sfx] = statistics.median((share * r['cftn2_2A' + sfx] + (1 - share) * r['cftn2_2B' + sfx]) / r['cftn'] for r in rounds)
    res = dict(preset=a.preset, run=a.run, batch=a.batch, steps=a.steps, threads=os.environ.get('OMP_NUM_THREADS'), stage_2A_share=share,
               step_ms={k: statistics.median(1000 * r[k] for r in rounds) for k in models}, ratio=ratio, rounds=rounds)
    text = json.dumps(res, indent=1); print(text)
    if a.out: Path(a.out).write_text(text + '\n')


if __name__ == '__main__':
    main()
