#!/usr/bin/env python
"""What a one-shot picture set is missing, in the judge's features: spread, offset of the mean, confidence of the pass.

    python tools/oneshot_spread.py --out runs/r27/spread.json RUN [RUN ...]

No training: each run's checkpoint decodes the reports' prompts (every val caption, `judge_generator`'s seed-0 order) in
each decoding of `--settings` (`decode_study.py`'s names), and the pictures are compared with the real val pictures on the
in-domain judge's features (`12a_clip`):
- `kid`: as the reports compute it (so every row can be checked against them);
- `kid_mean_matched`: the same pictures moved so that their mean feature is the real pictures' mean: what is left is the
  shape of the cloud (its spread and directions), not where its centre lies;
- `spread`: the mean cosine distance between two pictures of the set (the real pictures' beside it, `real_spread`);
- `offset`: the distance between the set's mean feature and the real pictures' mean;
- for one-shot, the pass itself: each position's top probability and entropy (nats) before the argmax, averaged;
- codes: distinct codes per picture, and the share of all positions taken by the set's most common code.
The VQ-VAE's reconstructions of the real val pictures are a row of their own (`reconstructions`): what the tokenizer allows.
"""
import argparse, json, os, sys
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('HF_DATASETS_OFFLINE', '1'); os.environ.setdefault('WANDB_MODE', 'disabled')
sys.path.insert(0, str(Path(__file__).parent))


def spread_figures(judge, images, real_feats, codes=None, seed=0):
    "The figures of the module docstring for pictures `images` (B, 3, H, W) against real features `real_feats` (unit vectors)."
    import torch
    from naruto_core.clip import kid
    f = judge.images(images); d = f.shape[1]; s = d ** 0.5
    mr, mf = real_feats.mean(0), f.mean(0)
    pair = lambda x: (1 - (x @ x.T)).sum().item() / (len(x) * (len(x) - 1))     # mean over pairs i != j (the diagonal is 0)
    out = dict(kid=kid(real_feats * s, f * s, seed=seed)[0], kid_mean_matched=kid(real_feats * s, (f - mf + mr) * s, seed=seed)[0],
               spread=pair(f), real_spread=pair(real_feats), offset=(mf - mr).norm().item())
    if codes is not None:
        out.update(codes_per_picture=torch.tensor([len(c.unique()) for c in codes]).float().mean().item(),
                   top_code_share=codes.flatten().bincount().max().item() / codes.numel())
    return out


def main(argv=None):
    import torch
    from decode_study import sampler_kw
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('runs', nargs='+')
    p.add_argument('--out', required=True)
    p.add_argument('--settings', nargs='*', default=['oneshot', 'oneshot_g1', 'it1_t05', 'it_g0', 'it_g1'])
    a = p.parse_args(argv)
    from naruto_core.clip import _draw, load_or_train_judge
    from naruto_core.generators import load_generator
    from naruto_core.sampling import decode_tokens, generate_tokens
    from naruto_core.tokenizer import encode_text
    out = Path(a.out); rows = json.loads(out.read_text()) if out.exists() else []
    done = {(r['run'], r['setting']) for r in rows}
    def save(row):
        rows.append(row); out.parent.mkdir(parents=True, exist_ok=True); out.write_text(json.dumps(rows, indent=1) + '\n')
        print(json.dumps(row), flush=True)
    for run in a.runs:
        b = load_generator(run, device='cpu')
        judge, (tr_x, tr_c), (va_x, va_c) = load_or_train_judge(b.cfg.data)
        vi, _ = _draw(len(va_c), len(tr_c), 200, 0)
        prompts = [va_c[i] for i in vi]; real = judge.images(va_x)
        if ('reconstructions', 'real') not in done:
            codes = b.vqvae.encode(va_x)[1].flatten(1)
            save(dict(run='reconstructions', model='vqvae', setting='real', **spread_figures(judge, decode_tokens(b, codes), real, codes)))
            done.add(('reconstructions', 'real'))
        for s in a.settings:
            if (Path(run).name, s) in done: continue
            codes = generate_tokens(b, prompts, seed=0, **sampler_kw(s))
            row = dict(run=Path(run).name, model=b.name, setting=s, **spread_figures(judge, decode_tokens(b, codes), real, codes))
            if s == 'oneshot':                     # the pass before its argmax: how sure each position is
                with torch.no_grad():
                    text = encode_text(b.tokenizer, prompts, b.space.text_len)
                    blank = torch.full((len(prompts), b.space.num_image_tokens), b.space.codebook_size)
                    logp = b.model(text, blank, return_text=False)[0].float().log_softmax(-1)
                row.update(top_prob=logp.max(-1).values.exp().mean().item(), entropy=-(logp.exp() * logp).sum(-1).mean().item())
            save(row)


if __name__ == '__main__':
    main()
