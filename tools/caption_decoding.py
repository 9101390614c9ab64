#!/usr/bin/env python
"""Caption decoding of a stage-2A CFTN v2, measured on validation prompts: beams kept and the weight of the image's own
likelihood in choosing among them (`sampling.CAPTION_BEAMS`, `sampling.CAPTION_RERANK` are chosen from this table).

    python tools/caption_decoding.py runs/demo/cftn2 --into nbs/results/caption_decoding.json

The prompts are `eval_prompts(200, seed=1)` and 100 held-out ones of the same seed: apart from the `seed=0` prompts the
demo reports. Each scene is rendered, encoded by the run's VQ-VAE and captioned; a caption's accuracy is the share of
the scene's attributes it names right (`evaluation.scene_agreement`; a caption outside the grammar scores 0).
"""
import argparse, json, os, sys, time
from collections import Counter
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('HF_DATASETS_OFFLINE', '1'); os.environ.setdefault('WANDB_MODE', 'disabled')
import torch
from naruto_core.evaluation import _parse_or_none, eval_prompts, scene_agreement
from naruto_core.generators import load_generator
from naruto_core.sampling import caption_beams, image_loglik
from naruto_core.shapes import parse_caption, pil_to_tensor, render
from naruto_core.tokenizer import decode_text

BEAMS, RERANKS = (1, 4, 8, 16), (0, 1, 2, 4, 6, 10, 20, 50)


def errors(scenes, caps) -> dict:
    "Attribute slips by kind: wrong background, shape kind, colour, size, a shape missing at its place, unparsable."
    err = Counter()
    for s, c in zip(scenes, caps):
        p = _parse_or_none(c)
        if p is None: err['unparsable'] += 1; continue
        err['background'] += p.background != s.background
        by = {x.position: x for x in p.shapes}
        for x in s.shapes:
            q = by.get(x.position)
            if q is None: err['position'] += 1; continue
            for a in ('kind', 'colour', 'size'): err[a] += getattr(q, a) != getattr(x, a)
    return dict(err)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('run', help='a CFTN v2 shapes run directory with stage-2A weights (e.g. runs/demo/cftn2)')
    ap.add_argument('--into', default=None, help='write the table as JSON here')
    a = ap.parse_args(argv)
    cb = load_generator(a.run, which='captioner'); m = cb.model.eval()
    prompts = eval_prompts(200, seed=1) + eval_prompts(100, seed=1, heldout=True)
    scenes = [parse_caption(p) for p in prompts]
    truth = torch.stack([pil_to_tensor(render(s, cb.cfg.data.image_size)) for s in scenes])
    with torch.no_grad(): codes = cb.vqvae.encode(truth.to(cb.device))[1].flatten(1)
    rows = []
    for W in BEAMS:
        t0 = time.perf_counter(); texts, scores, lls = [], [], []
        for i in range(0, len(codes), 50):
            c = codes[i:i + 50]; tx, sc = caption_beams(m, c, W); texts.append(tx); scores.append(sc)
            if W > 1: lls.append(image_loglik(m, tx.flatten(0, 1), c.repeat_interleave(tx.shape[1], 0)).view(len(c), -1))
        secs = time.perf_counter() - t0
        tx, sc = torch.cat(texts), torch.cat(scores); ll = torch.cat(lls) if lls else torch.zeros_like(sc)
        for lam in RERANKS if W > 1 else (0,):
            caps = decode_text(cb.tokenizer, tx[torch.arange(len(tx)), (sc + lam * ll).argmax(1)].cpu())
            acc = sum(scene_agreement(s, _parse_or_none(c)) for s, c in zip(scenes, caps)) / len(scenes)
            rows.append(dict(beams=W, rerank=lam, caption_accuracy=acc, seconds_per_image=secs / len(scenes), errors=errors(scenes, caps)))
            print(json.dumps(rows[-1]), flush=True)
    if a.into:
        Path(a.into).write_text(json.dumps(dict(run=str(a.run), prompts='eval_prompts(200, seed=1) + 100 held-out, seed=1',
                                                torch_threads=torch.get_num_threads(), rows=rows), indent=1) + '\n')


if __name__ == '__main__': main()
