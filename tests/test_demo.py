"`naruto demo` at the tiny preset: every file and report figure, and a rerun that resumes instead of retraining."
import json

from conftest import metrics, naruto


def test_demo_tiny_files_report_and_resume(tmp_path):
    out = tmp_path / 'demo'
    r = naruto('demo', '--preset', 'tiny', '--out', out, timeout=900, check=True)
    for f in ('samples.png', 'gates.png', 'report.json', 'report.md'): assert (out / f).stat().st_size > 0, f
    rep = json.loads((out / 'report.json').read_text())
    gen = rep['generation']
    assert {'oneshot', 'iterative_12', 'oneshot_bridges_off'} <= set(gen) and any(k.startswith('iterative_12_guided') for k in gen)
    for e in gen.values():
        for k in ('prompt_accuracy', 'seen_prompt_accuracy', 'heldout_prompt_accuracy', 'chance_prompt_accuracy'):
            assert 0 <= e[k] <= 1, (k, e[k])
        assert e['seconds_per_image'] > 0
    assert 0 <= rep['caption_accuracy'] <= 1 and rep['oneshot_speedup'] > 0
    assert set(rep['seconds']) == {'vqvae', 'codes', 'cftn2', 'eval', 'total'} and rep['peak_memory_mb'] > 0
    assert 0 < rep['vqvae']['codebook_usage'] <= 1
    assert (out / 'cftn2' / 'stage2A' / 'model.safetensors').exists()
    md = (out / 'report.md').read_text()
    assert 'held-out' in md and 'Chance' in md and 'samples.png' in md
    steps = [m['step'] for m in metrics(out / 'cftn2') if 'loss' in m]
    # the rerun finds both runs trained: nothing is retrained, the report is written again
    r2 = naruto('demo', '--preset', 'tiny', '--out', out, timeout=900, check=True)
    assert 'already trained' in r2.stderr
    assert [m['step'] for m in metrics(out / 'cftn2') if 'loss' in m] == steps
