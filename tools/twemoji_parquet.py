#!/usr/bin/env python
"""A real-picture stand-in in the Naruto set's schema (`image`, `text`): Twemoji PNGs with their names as captions.

    npm pack emoji-datasource-twitter@16.0.0                       # 62 MB; Twemoji graphics are CC-BY 4.0 (Twitter, Inc.)
    python tools/twemoji_parquet.py emoji-datasource-twitter-16.0.0.tgz runs/twemoji.parquet
    naruto demo --data runs/twemoji.parquet --out runs/twemoji-demo

Every 64-px image of the package, skin-tone variations included, captioned by its Unicode name in lower case
("grinning face", "waving hand sign, medium skin tone"). Reads the tarball directly; never a CI dependency.
"""
import io, json, sys, tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TONES = {'1F3FB': 'light skin tone', '1F3FC': 'medium-light skin tone', '1F3FD': 'medium skin tone',
         '1F3FE': 'medium-dark skin tone', '1F3FF': 'dark skin tone'}

def captions(emoji: list) -> dict:
    "image file name -> caption, for every emoji and skin-tone variation that has a Twitter image."
    out = {}
    for e in emoji:
        name = (e.get('name') or e.get('short_name') or '').lower().strip()
        if e.get('has_img_twitter') and name: out[e['image']] = name
        for key, v in (e.get('skin_variations') or {}).items():
            tones = ' and '.join(TONES[t] for t in key.split('-') if t in TONES)
            if v.get('has_img_twitter') and name: out[v['image']] = f"{name}, {tones}" if tones else name
    return out

def main(tgz: str, out: str):
    with tarfile.open(tgz) as tf:
        emoji = json.load(tf.extractfile('package/emoji.json'))
        caps = captions(emoji)
        rows = []
        for m in tf.getmembers():
            name = m.name.rsplit('/', 1)[-1]
            if m.name.startswith('package/img/twitter/64/') and name in caps:
                rows.append((caps[name], tf.extractfile(m).read()))
    rows.sort()                                            # a stable order: the loader's val split depends on the index
    table = pa.table({'image': [{'bytes': b, 'path': None} for _, b in rows], 'text': [c for c, _ in rows]})
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    print(json.dumps(dict(out=out, n=len(rows), distinct_captions=len({c for c, _ in rows}),
                          longest_caption_words=max(len(c.split()) for c, _ in rows))))

if __name__ == '__main__':
    if len(sys.argv) != 3: sys.exit(__doc__)
    main(*sys.argv[1:])
