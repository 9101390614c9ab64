#!/usr/bin/env python
"""Training step time of generators beside each other, paired and alternating, on one VQ-VAE's codes: the check that
pinned step counts (`design_study.py --steps`) still mean equal wall-clock time.

    OMP_NUM_THREADS=1 taskset -c 0 python tools/step_ratio.py --vqvae runs/twemoji/vqvae --out step_ratio.json cftn cftn2 xt_maskgit
    OMP_NUM_THREADS=1 taskset -c 0 python tools/step_ratio.py --vqvae runs/twemoji/vqvae cftn cftn2_default cftn2_default_lat32

Each name is a generator (its preset config) or an entry of `design_study.STUDY` (its model with the entry's overrides).

Each round times every model once, in turn (CFTN v2 in both curriculum stages, weighted by the preset's 2A share), with
the package's own calibration (`quality.step_seconds`: the median step of short runs); the ratios to the first model
are taken within each round, so a slow minute of the machine moves all models of that round alike. Run it alone.
"""
import argparse, json, os, statistics, sys
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('HF_DATASETS_OFFLINE', '1'); os.environ.setdefault('WANDB_MODE', 'disabled')
sys.path.insert(0, str(Path(__file__).parent))
from design_study import STUDY, config, register_diagnostics   # noqa: E402  the study's entries and configs


def step_seconds(name, vqvae, preset, spec, steps):
    """Seconds per step of `name` (a generator, or a study entry: its model and overrides) as the study trains it
    (`quality.step_seconds`: CFTN v2's stages weighted by the 2A share)."""
    from naruto_core.quality import step_seconds as timed
    model, overrides = STUDY.get(name, (name, []))
    return timed(config(preset, spec, model, overrides, 2000, 0), model, vqvae, steps)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('models', nargs='+', help='generators or study entries, the first the reference (e.g. cftn cftn2 xt_maskgit)')
    p.add_argument('--vqvae', required=True); p.add_argument('--preset', default='cpu')
    p.add_argument('--rounds', type=int, default=3); p.add_argument('--steps', type=int, default=30, help='steps of each timed run')
    p.add_argument('--out', default=None)
    a = p.parse_args(argv)
    from naruto_core.config import read_config
    spec = read_config(Path(a.vqvae)/'config.yaml').data.spec
    register_diagnostics()
    rounds = []
    for i in range(a.rounds):
        order = a.models if i % 2 == 0 else a.models[::-1]        # alternate the order: no model always runs first
        t = {m: step_seconds(m, a.vqvae, a.preset, spec, a.steps) for m in order}
        rounds.append(t); print(json.dumps({m: round(1000 * s, 1) for m, s in t.items()}), file=sys.stderr)
    ref = a.models[0]
    res = dict(preset=a.preset, data=spec, steps=a.steps, threads=os.environ.get('OMP_NUM_THREADS'), reference=ref,
               step_ms={m: statistics.median(1000 * r[m] for r in rounds) for m in a.models},
               ratio={m: statistics.median(r[m] / r[ref] for r in rounds) for m in a.models},
               steps_at_2000_of_reference={m: round(2000 * statistics.median(r[ref] / r[m] for r in rounds)) for m in a.models},
               rounds=rounds)
    text = json.dumps(res, indent=1); print(text)
    if a.out: Path(a.out).write_text(text + '\n')


if __name__ == '__main__':
    main()
