#!/usr/bin/env python
"""Gather `naruto demo` runs of several seeds into `nbs/results/demo_seeds.json`, the record the notebooks read.

    python tools/demo_seeds.py round20 runs/r20/demo0 runs/r20/demo1 runs/r20/demo2 \\
        --design 'the cpu preset with ...' --machine '2 CPU cores, one core each beside a study run'
    python tools/demo_seeds.py round20 runs/r20/demo3 --add        # one more seed into the same group

Each DIR is the `--out` of one `naruto demo` run; its seed is read from DIR/cftn2/config.yaml (`train_gen.seed`), its
figures from DIR/report.json: caption accuracy and, per decoding, the prompt accuracies (seen, held-out, one and two
shapes, chance) and seconds per image. wall_s and peak_memory_mb are the report's own (`seconds.total`, the process's
peak resident memory) and time the last `naruto demo` on DIR: gather a run that was resumed from its first report.
GROUP `top` writes the top-level keys (the preset of rounds 17-40, which `09_callosal`'s round 17 reads; replacing them
drops that preset's `timed_alone`); any other name a group of its own (the presets since: `round41`, `round42`). Without `--add` the group is replaced; with it, seeds are added (a seed already
there is replaced). Paths are relative to where it runs: run it from the repository's root.
"""
import argparse, json, sys
from pathlib import Path

TOP = ('command', 'machine', 'design', 'wall_s', 'peak_memory_mb', 'seeds', 'timed_alone')   # the preset of rounds 17-40
KEYS = ('prompt_accuracy', 'chance_prompt_accuracy', 'seen_prompt_accuracy', 'heldout_prompt_accuracy',
        'one_shape_prompt_accuracy', 'two_shape_prompt_accuracy', 'seconds_per_image')


def read_demo(folder: Path) -> tuple:
    "(seed, record, wall seconds, peak MB) of one demo run directory."
    rep_f, cfg_f = folder/'report.json', folder/'cftn2'/'config.yaml'
    for f in (rep_f, cfg_f):
        if not f.exists(): sys.exit(f"{folder}: no {f.relative_to(folder)} (is it the --out of a finished `naruto demo`?)")
    import yaml
    seed = yaml.safe_load(cfg_f.read_text())['train_gen']['seed']
    rep = json.loads(rep_f.read_text())
    gen = {k: {kk: v[kk] for kk in KEYS if kk in v} for k, v in rep['generation'].items() if isinstance(v, dict) and 'prompt_accuracy' in v}
    return str(seed), dict(caption_accuracy=rep['caption_accuracy'], generation=gen), rep['seconds']['total'], rep['peak_memory_mb']


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('group', help="the group of the JSON: 'top' (the preset that ships) or a name such as round20")
    p.add_argument('dirs', nargs='+', type=Path, help='`naruto demo --out` directories, one per seed')
    p.add_argument('--design', help='what was run, in words (kept when adding)')
    p.add_argument('--machine', help='where and beside what it ran (kept when adding)')
    p.add_argument('--add', action='store_true', help='add the seeds to the group instead of replacing it')
    p.add_argument('--into', type=Path, default=Path('nbs/results/demo_seeds.json'))
    a = p.parse_args(argv)
    if a.group != 'top' and a.group in TOP: sys.exit(f"group {a.group!r} would overwrite a top-level key of the record: choose another name")
    d = json.loads(a.into.read_text()) if a.into.exists() else {}
    old = d if a.group == 'top' else d.get(a.group, {})
    if a.add and not old: sys.exit(f"--add: {a.into} has no group {a.group!r} to add to")
    if not a.add and not a.design: sys.exit('--design is needed for a new group (what was run, in words)')
    g = {k: old[k] for k in ('design', 'machine') if k in old} if a.add else {}
    g.update({k: v for k, v in (('design', a.design), ('machine', a.machine)) if v})
    for k in ('wall_s', 'peak_memory_mb', 'seeds'): g[k] = dict(old.get(k, {})) if a.add else {}
    runs = [read_demo(folder) for folder in a.dirs]
    seeds = [r[0] for r in runs]
    if len(set(seeds)) < len(seeds): sys.exit(f"two of the runs have the same seed ({', '.join(seeds)}): one record per seed")
    for seed, rec, wall, mb in runs:
        g['seeds'][seed], g['wall_s'][seed], g['peak_memory_mb'][seed] = rec, round(wall, 1), round(mb, 1)
    for k in ('wall_s', 'peak_memory_mb', 'seeds'): g[k] = dict(sorted(g[k].items(), key=lambda kv: int(kv[0])))
    if a.group == 'top':
        for k in ('machine', 'timed_alone') if not a.add else ():         # the earlier preset's, not this one's
            d.pop(k, None)
        d.update(g)
    else: d[a.group] = g
    a.into.write_text(json.dumps(d, indent=1) + '\n')
    print(a.into, a.group, {s: round(r['caption_accuracy'], 3) for s, r in g['seeds'].items()})


if __name__ == '__main__':
    main()
