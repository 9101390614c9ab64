#!/usr/bin/env python
"""What 12-step MaskGIT decoding costs in one-shot passes, CFTN beside CFTN v2, at a preset's sizes (untrained models).

    OMP_NUM_THREADS=1 taskset -c 0 python tools/sampling_passes.py --preset cpu --out nbs/results/sampling_passes_cpu.json

`naruto bench`'s own pairing (`bench.masked_sampling_times`: alternating rounds of one forward pass over a fully masked
image and of `sample_masked` with 12 steps, no guidance): `passes` is the median over rounds of the second's time over
the first's, and the milliseconds the median of each. It times at `BenchConfig()`'s batch and repeats for every preset.
A one-shot pass runs both of CFTN v2's towers; its 12 steps run the text tower once and the image tower 12 times, so
CFTN v2 can come in under 12. Run it alone on the machine.
"""
import argparse, json, os

os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('WANDB_MODE', 'disabled')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--preset', default='cpu'); p.add_argument('--out', default=None)
    a = p.parse_args(argv)
    import torch
    from naruto_core.bench import BenchConfig, masked_sampling_times, random_tokens
    from naruto_core.config import load_config
    from naruto_core.generators import make_generator, preset_space
    cfg, bc = load_config(a.preset), BenchConfig()
    sp, out = preset_space(cfg), {}
    for name in ('cftn', 'cftn2'):
        torch.manual_seed(0)
        model = make_generator(name, cfg.gen, sp).eval()
        text, _ = random_tokens(sp, bc.sample_batch, seed=2)
        with torch.inference_mode(): fwd, it, passes = masked_sampling_times(model, text, bc, 'cpu')
        out[name] = dict(forward_ms=fwd, iterative_12_ms=it, passes=passes)
    res = dict(preset=a.preset, sample_batch=bc.sample_batch, repeats=bc.repeats, threads=torch.get_num_threads(), models=out)
    s = json.dumps(res, indent=1)
    if a.out: open(a.out, 'w').write(s + '\n')
    print(s)


if __name__ == '__main__':
    main()
