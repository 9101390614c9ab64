#!/usr/bin/env python
"""Decoding settings of masked generators, chosen on validation prompts: trained runs, each setting judged in-domain.

    python tools/decode_study.py --out runs/r9/decode.json runs/r9/tw/runs/cftn_ema995_seed0 runs/r9/tw/runs/cftn2_default_ema995_seed0
    python tools/decode_study.py --report --out runs/r9/decode_report.json --settings it_g1 it_g3lin ... RUN ...

No training: every setting decodes the same checkpoints. The choice is made on **validation prompts** that no reported
figure uses: train captions drawn with `--seed` (1; the reported retrieval draws seed 0's), asked once for the R-precision
and KID (against the val pictures) and once more, another draw, for retrieval against their own pictures. `--report` scores
the given settings the way the reports do (`judge_generator`'s seed-0 draw: every val caption, then 200 train captions).
A `shapes` run is scored by the attribute probe instead (`eval_prompts(seed=--seed)`; `--report`: the demo's seed 0).
One JSON row per (run, setting), the run by its folder's name; rows already in OUT are kept, so a rerun resumes.
"""
import argparse, json, os, sys, time
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('HF_DATASETS_OFFLINE', '1'); os.environ.setdefault('WANDB_MODE', 'disabled')

# name: the sampler's keywords that differ from BASE (`generate`'s own defaults, 12 passes, no guidance)
BASE = dict(steps=12, temperature=1.0, guidance_schedule='constant', choice_temperature=None, revise=0.0, temperature_schedule='linear',
            oneshot_temperature=0.0, prior_correction=0.0)   # 'oneshot': argmax, as every row before round 24 (it1_*: one pass sampled)
SETTINGS = {
    'oneshot':       dict(mode='oneshot', guidance=0.0),
    'oneshot_g1':    dict(mode='oneshot', guidance=1.0),
    'it_g0':         dict(mode='iterative', guidance=0.0),  # "12 passes" of the design tables
    'it_g1':         dict(mode='iterative', guidance=1.0),  # as shipped: the entry points' guidance 1
    'it_g1_t05':     dict(mode='iterative', guidance=1.0, temperature=0.5),
    'it_g1_t0':      dict(mode='iterative', guidance=1.0, temperature=0.0),  # argmax at every pass; the choice noise stays
    'it_g2lin':      dict(mode='iterative', guidance=2.0, guidance_schedule='linear'),       # guidance ramping with the share decided (MAR, Muse)
    'it_g3lin':      dict(mode='iterative', guidance=3.0, guidance_schedule='linear'),
    'it_g3lin_t05':  dict(mode='iterative', guidance=3.0, temperature=0.5, guidance_schedule='linear'),
    'it_g1_c50':     dict(mode='iterative', guidance=1.0, choice_temperature=50.0),  # more noise on what stays than the sampler's 20 (near a random order)
    # revising: the one-shot picture first, then each pass puts the least confident share back to mask (25% or 50% at pass 2)
    'rv25_g1':       dict(mode='iterative', guidance=1.0, revise=0.25),
    'rv50_g1':       dict(mode='iterative', guidance=1.0, revise=0.5),
    'rv25_g1_c0':    dict(mode='iterative', guidance=1.0, choice_temperature=0.0, revise=0.25),  # least confident exactly, no noise
    'rv50_g1_c0':    dict(mode='iterative', guidance=1.0, choice_temperature=0.0, revise=0.5),
    'rv50_g1_t0':    dict(mode='iterative', guidance=1.0, temperature=0.0, revise=0.5),  # argmax at every pass
    'rv25_g0':       dict(mode='iterative', guidance=0.0, revise=0.25),
    # round 13: guidance held constant above 1 (the ramps above average half their top), and fewer passes
    'oneshot_g2':    dict(mode='oneshot', guidance=2.0),
    'it_g2':         dict(mode='iterative', guidance=2.0),
    'it_g3':         dict(mode='iterative', guidance=3.0),
    'it_g2_t05':     dict(mode='iterative', guidance=2.0, temperature=0.5),
    'it4_g1':        dict(mode='iterative', guidance=1.0, steps=4),
    'it4_g2':        dict(mode='iterative', guidance=2.0, steps=4),
    'it2_g1':        dict(mode='iterative', guidance=1.0, steps=2),
    'it6_g1':        dict(mode='iterative', guidance=1.0, steps=6),
    'it8_g1':        dict(mode='iterative', guidance=1.0, steps=8),
    'it4_g0':        dict(mode='iterative', guidance=0.0, steps=4),
    # the sampling temperature anneals with the pass (1 - s/steps), so more passes sample colder: 12 passes at a higher start
    'it_g1_t15':     dict(mode='iterative', guidance=1.0, temperature=1.5),
    'it_g1_t2':      dict(mode='iterative', guidance=1.0, temperature=2.0),
    # ... or the temperature held constant at every pass (`temperature_schedule='constant'`): the same heat whatever the passes
    'it_g1_tc':      dict(mode='iterative', guidance=1.0, temperature_schedule='constant'),
    'it4_g1_tc':     dict(mode='iterative', guidance=1.0, steps=4, temperature_schedule='constant'),
    'it2_g1_tc':     dict(mode='iterative', guidance=1.0, steps=2, temperature_schedule='constant'),
    'it_g1_tc07':    dict(mode='iterative', guidance=1.0, temperature=0.7, temperature_schedule='constant'),
    'it4_g1_tc07':   dict(mode='iterative', guidance=1.0, temperature=0.7, steps=4, temperature_schedule='constant'),
    'it2_g1_tc07':   dict(mode='iterative', guidance=1.0, temperature=0.7, steps=2, temperature_schedule='constant'),
    # round 24: one-shot's pass sampled from softmax(logits / t) rather than its argmax (`oneshot_temperature`; 11_sampling
    # checks it draws what one iterative pass at temperature t draws, as these rows were first decoded)
    **{f'it1_t{t:02d}': dict(mode='oneshot', guidance=0.0, oneshot_temperature=t / 10) for t in (2, 3, 4, 5, 7, 10)},
    **{f'it1_g1_t{t:02d}': dict(mode='oneshot', guidance=1.0, oneshot_temperature=t / 10) for t in (2, 3, 4, 5)},
    # round 27: one-shot's argmax with the training codes' prior divided out at tau (`prior_correction`, logit adjustment)
    **{f'la{t:03d}{g}': dict(mode='oneshot', guidance=1.0 if g else 0.0, prior_correction=t / 100) for t in (25, 50, 75, 100) for g in ('', '_g1')},
}
KEYS = ('r_precision', 'clip_score', 'retrieval_top1', 'retrieval_top10', 'kid', 'degenerate_share', 'seconds_per_image',
        'prompt_accuracy', 'seen_prompt_accuracy', 'heldout_prompt_accuracy')     # the last three: shapes runs (the probe)


def validation_prompts(b, seed, n=200):
    "`n` train captions of bundle `b`'s data, a draw (`100 + seed`) that no report uses."
    import torch
    from naruto_core.clip import load_or_train_judge
    _, (_, tr_c), _ = load_or_train_judge(b.cfg.data)
    return [tr_c[i] for i in torch.randperm(len(tr_c), generator=torch.Generator().manual_seed(100 + seed))[:n]]


def sampler_kw(setting):
    "`generate`'s keywords for `setting`: BASE with the setting's changes, the sampler's schedules gathered into one `MaskedSampling`."
    import dataclasses
    from naruto_core.sampling import MaskedSampling
    kw = {**BASE, **SETTINGS[setting]}
    kw['sampling'] = MaskedSampling(**{f.name: kw.pop(f.name) for f in dataclasses.fields(MaskedSampling)})
    return kw


def judge(b, setting, seed, asked=None):
    """The in-domain figures of bundle `b` decoded with `setting`: on validation prompts `asked` (retrieval: `seed`'s draw), or as
    reported. A `shapes` run is scored by the probe instead, on its validation prompts (`eval_prompts(seed=seed)`) or the reports' (seed 0)."""
    from naruto_core.clip import judge_generator
    kw = sampler_kw(setting)
    if b.cfg.data.spec == 'shapes':
        from naruto_core.evaluation import evaluate_generator
        return evaluate_generator(b, num_prompts=200, caption=False, seed=0 if asked is None else seed, **kw)
    if asked is None: return judge_generator(b, **kw)                 # seed 0: the reports' draw
    return judge_generator(b, seed=seed, prompts=asked, **kw)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('runs', nargs='+', help='generator run directories (cftn, cftn2, xt_maskgit)')
    p.add_argument('--out', required=True, help='JSON of rows (resumed)')
    p.add_argument('--settings', nargs='*', default=list(SETTINGS), help=f"default all: {', '.join(SETTINGS)}")
    p.add_argument('--seed', type=int, default=1, help='validation prompts: the draw of train captions (not 0, the reports\')')
    p.add_argument('--report', action='store_true', help="score as the reports do (judge_generator's seed 0), for the chosen settings")
    p.add_argument('--last-weights', action='store_true', help='the last weights, not the moving average, of runs that keep one')
    a = p.parse_args(argv)
    from naruto_core.generators import load_generator
    for s in a.settings:
        if s not in SETTINGS: sys.exit(f"unknown setting '{s}' (choose from {', '.join(SETTINGS)})")
    if not a.report and a.seed == 0: sys.exit('--seed 0 is the reports\' draw: choose on another (or pass --report)')
    out = Path(a.out); rows = json.loads(out.read_text()) if out.exists() else []
    done = {(r['run'], r['setting'], r['weights']) for r in rows}
    for run in a.runs:
        b = load_generator(run, device='cpu', ema=not a.last_weights)
        asked = None if a.report else [] if b.cfg.data.spec == 'shapes' else validation_prompts(b, a.seed)   # once per run
        for s in a.settings:
            if (Path(run).name, s, b.weights) in done: continue
            t0 = time.time(); r = judge(b, s, a.seed, asked)
            row = dict(run=Path(run).name, model=b.name, weights=b.weights, setting=s, prompts='report' if a.report else f'validation (seed {a.seed})',
                       **{k: r.get(k) for k in KEYS}, wall_s=time.time() - t0)
            rows.append(row); out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(rows, indent=1) + '\n')
            print(json.dumps(row), flush=True)


if __name__ == '__main__':
    main()
