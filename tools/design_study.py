#!/usr/bin/env python
"""CFTN v2 design study: generators trained for the same wall-clock time on one VQ-VAE, then scored.

    python tools/design_study.py --vqvae runs/twemoji/vqvae --out runs/study --budget 240 [NAME ...]
    python tools/design_study.py --collect twemoji=runs/study shapes=runs/study_shapes --into nbs/results/equal_time.json
    python tools/design_study.py --append-round R4 twemoji=runs/study4/twemoji shapes=runs/study4/shapes
    python tools/design_study.py --which best --vqvae runs/twemoji/vqvae --out runs/study NAME   # also score best/ weights

Each entry of STUDY (or the NAMEs given) is trained for `--budget` seconds of training time: a 30-step calibration run
measures the step time, and max_steps is set so that the run takes the budget (the schedule, warmup and curriculum
switch scale with it). Real-picture runs are scored by the in-domain judge of `12a_clip`, `shapes` runs by the
attribute probe (and their captions, for CFTN v2). One JSON per entry in OUT; an entry whose JSON exists is skipped,
so rerunning resumes. Time it alone: two trainings on the same cores slow each other many times over.
Settings are chosen on the validation split's figures; the figures reported are the evaluator's.
"""
import argparse, json, os, shutil, statistics, sys, time
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('HF_DATASETS_OFFLINE', '1'); os.environ.setdefault('WANDB_MODE', 'disabled')

# name: (model, overrides); `gen.switch_frac=F` puts the 2A -> 2B switch at F x max_steps (0: no stage 2A).
# Overrides apply to the `cpu` preset as it is now: an entry of an earlier round reruns on today's preset unless it
# writes that round's settings out (ROUND8: the curriculum of rounds 8-16, which rounds 9-16's entries start from;
# the rows of design_study.json keep the overrides that ran).
ROUND8 = ['gen.caption_frac=0.4', 'gen.switch_frac=0.4', 'gen.caption_rows=replace', 'gen.caption_image_mask=1']
STUDY = {
    'cftn':                 ('cftn', []),
    'cftn2_cross_all_2B':   ('cftn2', ['gen.bridge_kind=cross', 'gen.bridges=all', 'gen.text_layers=0', 'gen.stage=2B', 'gen.switch_frac=0']),
    'cftn2_cross_t2_2B':    ('cftn2', ['gen.bridge_kind=cross', 'gen.bridges=all', 'gen.text_layers=2', 'gen.stage=2B', 'gen.switch_frac=0']),
    'cftn2_joint_t2_2B':    ('cftn2', ['gen.bridge_kind=joint', 'gen.bridges=all', 'gen.text_layers=2', 'gen.stage=2B', 'gen.switch_frac=0']),
    'cftn2_joint_t2_c2s2':  ('cftn2', ['gen.bridge_kind=joint', 'gen.bridges=all', 'gen.text_layers=2', 'gen.caption_frac=0.2', 'gen.switch_frac=0.2']),
    'cftn2_default':        ('cftn2', []),                          # as the preset ships it (tied towers at `cpu` from round 6, caption_weight 0.25 from 8, round 17's curriculum,
                                                                     #   bridges reading at the block's input after round 41; its rows of rounds 17-41 read 'depth')
    'cftn2_depth':          ('cftn2', ['gen.fusion=depth']),   # the preset of rounds 17-41 (its rows there are named cftn2_default): bridges read the other tower after its block
    'cftn2_untied':         ('cftn2', ['gen.tie_towers=false']),    # a text tower of its own (the `cpu` preset before round 6)
    'cftn2_default_ema995': ('cftn2', ['train_gen.ema=0.995']),
    'cftn2_default_ema999': ('cftn2', ['train_gen.ema=0.999']),
    'cftn_ema995':          ('cftn', ['train_gen.ema=0.995']),
    'cftn2_t4_2B':          ('cftn2', ['gen.text_layers=4', 'gen.stage=2B', 'gen.switch_frac=0']),
    'cftn2_2B':             ('cftn2', ['gen.stage=2B', 'gen.switch_frac=0']),
    'cftn2_2A':             ('cftn2', ['gen.stage=2A', 'gen.switch_frac=0']),
    'cftn2_s75':            ('cftn2', ['gen.switch_frac=0.75']),
    'cftn2_2B_g3':          ('cftn2', ['gen.stage=2B', 'gen.switch_frac=0', 'gen.gate_init=3']),
    'cftn2_default_g3':     ('cftn2', ['gen.gate_init=3']),
    'cftn2_2B_tlr2':        ('cftn2', ['gen.stage=2B', 'gen.switch_frac=0', 'gen.text_lr=2']),
    'cftn2_2B_tlr05':       ('cftn2', ['gen.stage=2B', 'gen.switch_frac=0', 'gen.text_lr=0.5']),
    'cftn2_default_depth_t4': ('cftn2', ['gen.fusion=depth', 'gen.text_layers=4']),
    'cftn2_2A_depth_t4':    ('cftn2', ['gen.stage=2A', 'gen.switch_frac=0', 'gen.fusion=depth', 'gen.text_layers=4']),
    'cftn2_2B_depth_t4':    ('cftn2', ['gen.stage=2B', 'gen.switch_frac=0', 'gen.fusion=depth', 'gen.text_layers=4']),
    'cftn2_default_cb':     ('cftn2', ['gen.caption_grad=bridges']),
    'cftn2_2A_cb':          ('cftn2', ['gen.stage=2A', 'gen.switch_frac=0', 'gen.caption_grad=bridges']),
    'cftn2_2B_mid':         ('cftn2', ['gen.stage=2B', 'gen.switch_frac=0', 'gen.bridges=middle', 'gen.bridge_ratio=0.5']),
    'cftn2_2B_lat16':       ('cftn2', ['gen.stage=2B', 'gen.switch_frac=0', 'gen.text_latents=16']),   # the image reads 16 latents
    'cftn2_default_lat16':  ('cftn2', ['gen.text_latents=16']),
    'cftn2_2B_lat32':       ('cftn2', ['gen.stage=2B', 'gen.switch_frac=0', 'gen.text_latents=32']),   # more latents than caption tokens
    'cftn2_default_lat32':  ('cftn2', ['gen.text_latents=32']),
    'cftn2_default_sw15':   ('cftn2', ['gen.switch_frac=0.15']),      # a shorter stage 2A: 15% of the steps, not 40%
    'cftn2_tied':           ('cftn2', ['gen.tie_towers=true']),      # the text tower runs the image tower's blocks
    'cftn2_tied_2B':        ('cftn2', ['gen.tie_towers=true', 'gen.stage=2B', 'gen.switch_frac=0']),
    'cftn2_tied_c2':        ('cftn2', ['gen.tie_towers=true', 'gen.caption_frac=0.2']),   # a fifth of each 2A batch captioning, not 2/5
    'cftn2_cw25':           ('cftn2', ['gen.caption_weight=0.25']),  # the caption loss at a quarter of the picture loss's weight (`cpu` from round 8)
    'cftn2_cw100':          ('cftn2', ['gen.caption_weight=1']),     # at full weight (the `cpu` preset before round 8)
    'cftn2_cw10':           ('cftn2', ['gen.caption_weight=0.1']),
    'cftn2_sw20':           ('cftn2', ROUND8 + ['gen.switch_frac=0.2']),      # stage 2A for a fifth of the steps, not two fifths (round 9)
    'cftn2_sw30':           ('cftn2', ROUND8 + ['gen.switch_frac=0.3']),      # between the two
    'cftn2_cgtext':         ('cftn2', ['gen.caption_grad=text']),    # the caption loss kept out of the image tower
    'cftn2_cgtext_cw25':    ('cftn2', ['gen.caption_grad=text', 'gen.caption_weight=0.25']),
    'cftn2_bkv':            ('cftn2', ROUND8 + ['gen.bridge_kv=block']),     # the bridges read the text through the block's own key/value projection (round 12)
    'cftn2_reg8':           ('cftn2', ROUND8 + ['gen.image_registers=8']),   # 8 learned tokens beside the image's in the image tower (round 12)
    'cftn2_bkv_2B':         ('cftn2', ['gen.bridge_kv=block', 'gen.stage=2B', 'gen.switch_frac=0']),   # both, generation only (round 12)
    'cftn2_cw0':            ('cftn2', ROUND8 + ['gen.caption_weight=0']),   # round 14, a diagnostic: 2A's captioning rows stay, their loss is not trained
    'cftn2_untied_cgtext':  ('cftn2', ROUND8 + ['gen.tie_towers=false', 'gen.caption_grad=text']),   # round 14: the caption loss never reaches the image tower's blocks
    'cftn2_c2':             ('cftn2', ROUND8 + ['gen.caption_frac=0.2']),    # round 14: a fifth of each 2A batch captioning, not two fifths (weight 0.25)
    'cftn2_c2_cw50':        ('cftn2', ROUND8 + ['gen.caption_frac=0.2', 'gen.caption_weight=0.5']),   # round 14: half the rows, twice the weight
    'cftn2_joint_rows':     ('cftn2', ROUND8 + ['gen.caption_rows=joint']),   # round 15: 2A's captioning rows learn the picture too, unconditionally (masked image)
    'cftn2_joint_c10':      ('cftn2', ROUND8 + ['gen.caption_rows=joint', 'gen.caption_frac=1']),   # round 15: every 2A row captions and learns the picture unconditionally
    'cftn2_joint_h50':      ('cftn2', ROUND8 + ['gen.caption_rows=joint', 'gen.caption_image_mask=0.5']),   # round 15: the captioning rows' image at most half hidden
    'cftn2_joint_h50_c2':   ('cftn2', ROUND8 + ['gen.caption_rows=joint', 'gen.caption_image_mask=0.5', 'gen.caption_frac=0.2']),   # round 16: half-hidden joint rows, a fifth of each 2A batch
    'cftn2_joint_h50_c2_sw80': ('cftn2', ROUND8 + ['gen.caption_rows=joint', 'gen.caption_image_mask=0.5', 'gen.caption_frac=0.2', 'gen.switch_frac=0.8']),   # round 16: the same captioning rows as the preset's, spread over 4/5 of the steps
    'cftn2_joint_h50_c2_sw60': ('cftn2', ['gen.caption_rows=joint', 'gen.caption_image_mask=0.5', 'gen.caption_frac=0.2', 'gen.switch_frac=0.6']),   # round 17: the same rows with the switch between the preset's (0.4) and the spread's (0.8)
    'cftn2_mid33':          ('cftn2', ['gen.bridges=middle', 'gen.bridge_ratio=0.33']),   # round 20: bridges on the middle third (cpu: layer 1 of 4; naruto: 4-7 of 12), both directions
    'cftn2_mid50':          ('cftn2', ['gen.bridges=middle', 'gen.bridge_ratio=0.5']),    # round 20: on the middle half (cpu: layers 1-2; naruto: 3-8)
    'cftn2_osf30':          ('cftn2', ['gen.oneshot_frac=0.3']),    # round 22: fully masked rows back to a quarter of 2A's batch (0.3 x 4/5)
    'cftn2_cd05':           ('cftn2', ['gen.cond_drop=0.05']),     # round 22: half the caption dropout (2A's captioning rows already learn the picture unconditionally)
    'cftn2_osf30_cd05':     ('cftn2', ['gen.oneshot_frac=0.3', 'gen.cond_drop=0.05']),   # round 23: both of round 22's changes together
    'cftn2_gate4':          ('cftn2', ['gen.gate_init=4']),        # round 25: the bridges' gates open from the start (sigmoid(4) = 0.98, not 0.5)
    'cftn2_gatem1':         ('cftn2', ['gen.gate_init=-1']),       # round 26: the gates more closed from the start (sigmoid(-1) = 0.27)
    'cftn2_gatem2':         ('cftn2', ['gen.gate_init=-2']),       # round 26: ... (sigmoid(-2) = 0.12)
    'cftn2_ramp':           ('cftn2', ['gen.caption_schedule=ramp']),   # round 28: 2A's captioning rows grow from none to 2/5 of a batch at the switch (as many, most late)
    'cftn2_ramp_sw80':      ('cftn2', ['gen.caption_schedule=ramp', 'gen.caption_frac=0.15', 'gen.switch_frac=0.8']),   # round 28: the ramp over 4/5 of the steps, to 0.3 at the switch (as many rows again)
    'cftn2_decay':          ('cftn2', ['gen.caption_schedule=decay']),  # round 29: the mirror image of the ramp, from 2/5 of a batch at the first step to none at the switch
    'cftn2_cir_null':       ('cftn2', ['gen.caption_image_reads=null_caption']),   # round 30: 2A's captioning rows (and captioning) read the null caption through the bridges, not none
    'cftn2_restart':        ('cftn2', ['train_gen.restart_step=1200']),   # round 31: the schedule starts again at the switch (2A decays to its floor, 2B warms up and decays anew)
    'cftn2_own_head':       ('cftn2', ['gen.tie_text_head=false']),   # round 32: the caption head has weights of its own (the caption loss no longer trains the embeddings as its output layer)
    'cftn2_input':          ('cftn2', ['gen.fusion=input']),   # round 39: each bridge reads the other tower at its block's input (layer 0: embeddings)
    'cftn2_input_nogate':   ('cftn2', ['gen.fusion=input', 'gen.gate=none']),   # round 39: ... and adds all it reads (no gate): one sequence's reading, own key/value projection
    'cftn2_r14':            ('cftn2', ROUND8),   # the round-8 preset's curriculum written out (round 15's shapes seeds 1-2 ran as cftn2_default then)
    'cftn_textblind':       ('cftn_textblind', []),  # diagnostic (round 12): CFTN whose caption tokens never read the image tokens
    'xt_maskgit':           ('xt_maskgit', []),      # the x-transformers MaskGIT of CFTN's size (peer), our loop and sampler
    'lstm':                 ('lstm', []),
    'gpt':                  ('gpt', []),
}


def register_diagnostics():
    """A diagnostic generator, registered as 'cftn_textblind': CFTN (one sequence [caption; image], the same weights and
    FLOPs) whose caption tokens attend to the caption only, as CFTN v2's text tower does in generation. What it loses
    against CFTN is what a caption that never reads the picture costs, whatever the two towers do. Registered in this
    process only (by `main` and `tools/step_ratio.py`): `naruto eval` cannot open its runs, the study scores them."""
    from naruto_core.cftn import CFTN
    from naruto_core.generators import register_generator

    class CFTNTextBlind(CFTN):
        def attention_mask(self, text, image):
            T, N = text.shape[1], image.shape[1]
            mask = super().attention_mask(text, image).repeat(1, T + N, 1)                             # (B, T+N, T+N)
            mask[:, :T, T:] = False                                                                     # captions: blind to the image
            mask[:, :T, :T] |= ~mask[:, :T, :T].any(-1, keepdim=True)   # an all-padding caption reads all of itself, not nothing (NaN)
            return mask
    register_generator('cftn_textblind', CFTNTextBlind)

# decoding modes: name -> (mode, guidance); autoregressive models decode in raster order only ('ar')
MODES = {'oneshot': ('oneshot', 0.0), 'iterative': ('iterative', 0.0), 'iterative_g1': ('iterative', 1.0), 'ar': (None, 0.0)}
METRICS = ('r_precision', 'clip_score', 'retrieval_top1', 'retrieval_top10', 'kid', 'fid', 'degenerate_share', 'seconds_per_image')


def config(preset, spec, model, overrides, steps, seed, extra=()):
    "The entry's config at `steps` steps (schedule scaled by `budget_overrides`; the switch at `gen.switch_frac` of them when given)."
    from naruto_core.config import load_config
    from naruto_core.quality import budget_overrides
    frac = [float(o.split('=')[1]) for o in overrides if o.startswith('gen.switch_frac=')]
    o = [f'data.spec={json.dumps(spec)}', f'train_gen.seed={seed}']
    o += [x for x in overrides if not x.startswith('gen.switch_frac=')] + list(extra)
    o += budget_overrides(load_config(preset, o), steps)      # as shipped: the preset's switch share (1200 of 2000 at cpu)
    if model == 'cftn2' and frac: o.append(f'gen.switch_step={int(frac[-1] * steps)}')   # the last given wins, as for any override
    return load_config(preset, o)


def run_entry(name, model, overrides, vqvae, out, budget, preset='cpu', seed=0, modes=('oneshot', 'iterative'), judge_shapes=False, log=print,
              steps=None, prompt_seed=0):
    """Train entry `name` for `budget` seconds (or a pinned count of `steps`) and score it; `prompt_seed` (shapes): the probe's
    prompts (1: the validation prompts that choices are made on, 0: the reported ones)."""
    from naruto_core.generators import load_generator
    from naruto_core.config import read_config
    from naruto_core.runs import RunDir
    from naruto_core.stage2 import train_generator
    from naruto_core.quality import calibrate_steps
    spec = read_config(Path(vqvae)/'config.yaml').data.spec
    run = Path(out)/'runs'/name
    if steps: step_s = None; log(f"{name}: {steps} steps (pinned)")     # a count measured on a quiet day: drift cannot change it
    else:
        steps, step_s = calibrate_steps(config(preset, spec, model, overrides, 2000, seed), model, vqvae, budget)   # the package's calibration
        log(f"{name}: {step_s * 1e3:.1f} ms per step -> {steps} steps")
    shutil.rmtree(run, ignore_errors=True)
    t0 = time.time(); train_generator(config(preset, spec, model, overrides, steps, seed), model, vqvae, run, progress=False)
    train_s = time.time() - t0
    res = dict(name=name, model=model, overrides=overrides, seed=seed, budget_s=budget, steps=steps,
               step_ms=(step_s or train_s / steps) * 1e3,    # calibrated, or (pinned) as this run took: both only as quiet as the machine
               train_s=train_s, pinned_steps=step_s is None)
    val = [r for r in RunDir(run).read_metrics() if 'val_loss' in r][-1]
    res.update(val_loss=val['val_loss'], val_loss_oneshot=val.get('val_loss_oneshot'))
    res.update(ema_val_loss=val.get('ema_val_loss'), ema_val_loss_oneshot=val.get('ema_val_loss_oneshot'))
    b = load_generator(run, device='cpu')                      # the weights' moving average when the run kept one
    if b.weights == 'ema':                                     # and the last weights beside it: a paired comparison
        res['last_weights'] = score(load_generator(run, device='cpu', ema=False), spec, modes, judge_shapes, prompt_seed)
    res.update(score(b, spec, modes, judge_shapes, prompt_seed))
    return res


def score_best(run, res, a):
    "Entry `res` (its JSON) scored again on the run's best/ weights (the lowest validation loss), with the step they are from."
    import torch
    from naruto_core.config import read_config
    from naruto_core.generators import load_generator
    step = torch.load(Path(run)/'best'/'state.pt', weights_only=True)['step']
    b = load_generator(run, device='cpu', which='best')
    spec = read_config(Path(run)/'config.yaml').data.spec
    keep = {k: res[k] for k in ('name', 'model', 'overrides', 'seed', 'budget_s', 'steps', 'step_ms', 'train_s', 'pinned_steps')}
    res = keep | dict(weights='best', best_step=step) | score(b, spec, tuple(a.modes.split(',')), a.judge_shapes, a.prompt_seed)
    res.pop('captions', None)          # captions come from the captioner (stage 2A's last weights) whichever weights generate
    return res


def score(b, spec, modes, judge_shapes=False, prompt_seed=0):
    "Every decoding mode of bundle `b` by the probe (shapes; its prompts drawn with `prompt_seed`) and/or the in-domain judge."
    from naruto_core.generators import load_generator
    res = {}
    if b.model.autoregressive: modes = ('ar',)
    if spec == 'shapes':
        from naruto_core.evaluation import evaluate_generator
        cb = load_generator(b.path, device='cpu', which='captioner', ema=b.weights == 'ema') if b.captions else None
        for m in modes:
            mode, g = MODES[m]
            r = evaluate_generator(b, mode=mode, steps=12, guidance=g, num_prompts=200, caption_bundle=cb, caption=cb is not None and m == 'oneshot',
                                    seed=prompt_seed)
            res[m] = {k: r.get(k) for k in ('prompt_accuracy', 'seen_prompt_accuracy', 'heldout_prompt_accuracy', 'caption_accuracy', 'seconds_per_image')}
    if spec != 'shapes' or judge_shapes:          # on shapes beside the probe: does the judge rank models as the probe does?
        from naruto_core.clip import judge_generator
        for m in modes:
            mode, g = MODES[m]
            r = judge_generator(b, mode=mode, steps=12, guidance=g)
            res[m if spec != 'shapes' else f'{m}_judge'] = {k: r.get(k) for k in METRICS}
    if spec != 'shapes' and b.captions:            # the other direction, judged: the stage-2A weights caption val pictures
        from naruto_core.clip import judge_captions
        cb = load_generator(b.path, device='cpu', which='captioner', ema=b.weights == 'ema')
        r = judge_captions(cb, num_images=190)
        res['captions'] = {k: v for k, v in r.items() if k != 'examples'} | dict(examples=r['examples'][:3])
    return res


def collect(pairs, into, budget=240, preset='cpu'):
    "Gather the entries of each NAME=DIR into one JSON with the judge's ceiling and chance on that set (for the tables of 14a_quality)."
    from naruto_core.clip import judge_ceiling
    from naruto_core.config import read_config
    sets = {}
    for pair in pairs:
        name, d = pair.split('=', 1)
        entries = [json.loads(f.read_text()) for f in sorted(Path(d).glob('*_seed*.json')) if f.name.count('.') == 1]
        if not entries: sys.exit(f"{d}: no entries")
        data = read_config(Path(d)/'runs'/entries[0]['name']/'config.yaml').data
        sets[name] = dict(data=data.spec, entries=entries, judge=judge_ceiling(data))
    Path(into).write_text(json.dumps(dict(budget_s=budget, preset=preset, threads=1, tool='tools/design_study.py', sets=sets), indent=1) + '\n')
    print(into)


def append_round(tag, pairs, into='nbs/results/design_study.json'):
    """Add the entries of each SET=DIR (SET: a key of INTO, e.g. twemoji, shapes) to INTO as rows named TAG_<entry>,
    replacing the rows of an earlier append with that tag; entries with several seeds (or no seed 0) also go to INTO's 'seeds' groups.
    A row whose run is still in DIR/runs carries its validation curve: [step, val loss, one-shot val loss] rows, and one
    whose best/ weights were scored (`--which best`) their figures as 'best_weights'."""
    from naruto_core.runs import read_metrics
    P = Path(into); d = json.loads(P.read_text())
    def row(r, folder):
        r = dict(r)
        val = [v for v in read_metrics(Path(folder)/'runs'/r['name']/'metrics.jsonl') if 'val_loss' in v]
        if val: r['curve'] = [[v['step'], v['val_loss'], v.get('val_loss_oneshot')] for v in val]   # the run is still there
        fb = Path(folder)/f"{r['name']}.best.json"                 # its best/ weights scored too (--which best), of this very run
        b = json.loads(fb.read_text()) if fb.exists() else {}
        if b.get('train_s') == r['train_s']: r['best_weights'] = {k: v for k, v in b.items() if k in ('best_step', *MODES)}
        if 'iterative_g1' in r: r['iterative::1'] = r.pop('iterative_g1')
        for w in ('last_weights', 'best_weights'):
            if 'iterative_g1' in r.get(w, {}): r[w]['iterative::1'] = r[w].pop('iterative_g1')
        if 'gen.stage=2B' in r.get('overrides', []):     # never trained captions: no caption figure
            for m in ('oneshot', 'iterative', 'iterative::1'):
                if m in r and 'caption_accuracy' in r[m]: r[m]['caption_accuracy'] = None
            r.pop('captions', None)
        over = ' '.join(o for o in r.get('overrides', []) if o != 'gen.switch_frac=0') or 'as shipped'
        r['label'] = f"{tag} {r['model']}: {over}" + ('' if r['seed'] == 0 else f" (seed {r['seed']})")
        r['name'] = f"{tag}_{r['name']}"; return r
    groups = {k: v for k, v in d.get('seeds', {}).items() if not k.startswith(f'{tag}: ')}
    for key in {pair.split('=', 1)[0] for pair in pairs}:        # an earlier append's rows go once, so two DIRs may share a SET
        d[key] = [r for r in d.get(key, []) if not r['name'].startswith(f'{tag}_')]
    by = {}                                                     # (SET, entry) -> rows: the seeds of one entry may lie in several DIRs
    for pair in pairs:
        key, folder = pair.split('=', 1)
        rows = [row(json.loads(f.read_text()), folder) for f in sorted(Path(folder).glob('*_seed*.json')) if f.name.count('.') == 1]
        if not rows: sys.exit(f"{folder}: no entries")
        d[key] += [r for r in rows if r['seed'] == 0]
        for r in rows: by.setdefault((key, r['name'][len(tag) + 1:].rsplit('_seed', 1)[0]), []).append(r)
    groups.update({f'{tag}: {key} {b}': sorted(v, key=lambda r: r['seed']) for (key, b), v in by.items()
                   if len(v) > 1 or v[0]['seed'] != 0})         # several seeds, or only other seeds than 0
    d['seeds'] = groups
    P.write_text(json.dumps(d, indent=1) + '\n'); print(into, {k: len(v) for k, v in d.items() if isinstance(v, list)})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('names', nargs='*', help=f"entries of the study (default: all): {', '.join(STUDY)}")
    p.add_argument('--vqvae', help='a VQ-VAE run directory with cached codes (its data set is the study\'s)')
    p.add_argument('--out'); p.add_argument('--budget', type=float, default=240, help='training seconds per entry')
    p.add_argument('--preset', default='cpu'); p.add_argument('--seeds', default='0', help='comma-separated training seeds')
    p.add_argument('--modes', default='oneshot,iterative', help=f"decoding modes of masked models: {', '.join(m for m in MODES if m != 'ar')}")
    p.add_argument('--judge-shapes', action='store_true', help='on shapes, score with the in-domain judge too (beside the probe)')
    p.add_argument('--prompt-seed', type=int, default=0, help='shapes: the seed of the probe\'s prompts (1: validation prompts)')
    p.add_argument('--steps', default='', metavar='MODEL=N,...',
                   help="pin each model's step count (e.g. cftn=1127,cftn2=1055: counts calibrated on a quiet day) instead of calibrating now")
    p.add_argument('--which', default='checkpoint', choices=('checkpoint', 'best'),
                   help="best: instead of training, score the lowest-validation-loss weights (best/) of finished entries, into NAME.best.json")
    p.add_argument('--collect', nargs='+', metavar='NAME=DIR', help='instead: gather the entries of each DIR (with ceilings) into --into')
    p.add_argument('--into', default='nbs/results/equal_time.json')
    p.add_argument('--append-round', nargs='+', metavar=('TAG', 'SET=DIR'),
                   help='instead: add the entries of each DIR to --into (default results/design_study.json) as rows TAG_<entry>')
    a = p.parse_args(argv)
    if a.collect: return collect(a.collect, a.into, a.budget, a.preset)
    if a.append_round:
        if len(a.append_round) < 2: sys.exit('--append-round needs a TAG and at least one SET=DIR')
        into = a.into if a.into != p.get_default('into') else 'nbs/results/design_study.json'
        return append_round(a.append_round[0], a.append_round[1:], into)
    if not a.out or not (a.vqvae or a.which == 'best'): sys.exit('--vqvae and --out are needed to run entries (--which best: --out)')
    register_diagnostics()
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    pins = {m: int(n) for m, n in (kv.split('=') for kv in a.steps.split(',') if kv)}
    for name in a.names or list(STUDY):
        if name not in STUDY: sys.exit(f"unknown entry '{name}' (choose from {', '.join(STUDY)})")
        for seed in map(int, a.seeds.split(',')):
            f = out/f'{name}_seed{seed}.json'
            if a.which == 'best':                                   # a finished entry's best/ weights, scored as its last ones were
                if not f.exists(): sys.exit(f"{f}: no finished entry to score the best weights of")
                fb = f.with_suffix('.best.json')
                if not fb.exists(): fb.write_text(json.dumps(score_best(out/'runs'/f.stem, json.loads(f.read_text()), a), indent=1) + '\n')
                continue
            if f.exists(): continue
            res = run_entry(f'{name}_seed{seed}', *STUDY[name], a.vqvae, out, a.budget, a.preset, seed,
                            modes=tuple(a.modes.split(',')), judge_shapes=a.judge_shapes, log=lambda s: print(s, file=sys.stderr, flush=True),
                            steps=pins.get(STUDY[name][0]), prompt_seed=a.prompt_seed)
            f.write_text(json.dumps(res, indent=1) + '\n'); print(json.dumps(res), flush=True)


if __name__ == '__main__':
    main()
