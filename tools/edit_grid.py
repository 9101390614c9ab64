#!/usr/bin/env python
"""A grid of edits on real pictures: each validation picture, its box redrawn for another caption, extended, varied.

    python tools/edit_grid.py --ckpt RUN --out nbs/images/edit_real.png [--n 6]

RUN is a masked generator (CFTN or CFTN v2) trained on a real captioned set (e.g. the Twemoji stand-in of
`tools/twemoji_parquet.py`); its validation pictures are read from the run's own data spec. Columns: the picture,
its VQ-VAE reconstruction, the centre box inpainted with the caption of the next picture, the picture extended to the
right, a variation (strength 0.4).
"""
import argparse, os
os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('HF_DATASETS_OFFLINE', '1')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--ckpt', required=True); p.add_argument('--out', required=True)
    p.add_argument('--n', type=int, default=6); p.add_argument('--seed', type=int, default=0)
    a = p.parse_args(argv)
    import torch
    from naruto_core.data import load_data
    from naruto_core.editing import edit, encode_picture, extend, vary
    from naruto_core.generators import load_generator
    from naruto_core.sampling import decode_tokens
    from naruto_core.shapes import image_grid
    b = load_generator(a.ckpt)
    val = load_data(b.cfg.data, 'val')
    idx = torch.randperm(len(val), generator=torch.Generator().manual_seed(a.seed))[:a.n].tolist()
    pics = [val[i] for i in idx]
    S = b.cfg.data.image_size; box = (S // 4, S // 4, 3 * S // 4, 3 * S // 4)
    rows = []
    for j, (x, cap) in enumerate(pics):
        other = pics[(j + 1) % len(pics)][1]
        rec = decode_tokens(b, encode_picture(b, x)[None])[0]
        rows += [x, rec, edit(b, x, box, other, seed=a.seed)[0], extend(b, x, 'right', cap, seed=a.seed)[0],
                 vary(b, x, cap, strength=0.4, seed=a.seed)[0]]
        print(f"{cap!r} -> centre redrawn as {other!r}")
    image_grid(torch.stack([r.cpu() for r in rows]), nrow=5).save(a.out)
    print(a.out)


if __name__ == '__main__':
    main()
