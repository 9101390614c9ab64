"""How the project reads: notebooks stored with their outputs, modules that import downward only, inference that
never loads training code, and generators asked through their contract rather than probed."""
import json, re, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NBS = sorted(p for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith('_'))
PKG = ROOT/'naruto_core'


def _cells(nb): return json.loads(nb.read_text())['cells']


@pytest.mark.parametrize('nb', [n for n in NBS if n.stem != '15a_main'], ids=lambda p: p.stem)
def test_notebook_is_stored_with_outputs(nb):
    "A reader on GitHub sees what the code shows: every notebook but the entry point stores outputs."
    outs = [c for c in _cells(nb) if c['cell_type'] == 'code' and c.get('outputs')]
    assert outs, f"{nb.name} stores no output: run `python tools/refresh_notebooks.py {nb.stem}` and commit"


@pytest.mark.parametrize('nb', NBS, ids=lambda p: p.stem)
def test_notebook_opens_with_title_and_summary(nb):
    first = ''.join(_cells(nb)[0]['source']).splitlines()
    assert first[0].startswith('# ') and first[1].startswith('> '), f"{nb.name} must open with '# Title' and '> one line'"


def _module_notebooks() -> dict:
    "module name -> the notebook it is exported from, read from each generated file's header."
    out = {}
    for f in PKG.glob('*.py'):
        m = re.search(r'File to edit: \.\./nbs/(\S+)\.ipynb', f.read_text())
        if m: out[f.stem] = m.group(1)
    return out


def test_modules_import_downward_only():
    "A module imports only modules of notebooks before its own, so reading (and exporting) in order always works."
    nbof = _module_notebooks()
    assert {'runs', 'generators', 'sampling', 'training'} <= set(nbof)
    bad = []
    for mod, nb in nbof.items():
        src = (PKG/f'{mod}.py').read_text()
        for dep in set(re.findall(r'^\s*from (?:\.|naruto_core\.)(\w+) import', src, re.M)):
            if dep in nbof and dep != mod and nbof[dep] >= nb: bad.append(f"{mod} ({nb}) imports {dep} ({nbof[dep]})")
    assert not bad, bad


def test_inference_never_loads_training_code():
    "Loading a generator and sampling from it imports none of the training modules."
    code = ("import sys; import naruto_core.cli, naruto_core.generators, naruto_core.sampling, naruto_core.editing; "
            "print(sorted(m for m in sys.modules if m.startswith('naruto_core')))")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    loaded = set(eval(r.stdout))
    assert 'naruto_core.sampling' in loaded
    assert not loaded & {'naruto_core.training', 'naruto_core.curriculum', 'naruto_core.stage2', 'naruto_core.codes'}, loaded


def test_generators_are_asked_not_probed():
    "What a generator can do is a class attribute of the contract; nothing outside it tests a kind string or probes attributes."
    pat = re.compile(r"kind\s*[!=]=\s*'(ar|masked)'|predicts_text|hasattr\([^)]*model|getattr\([^)]*model[^)]*,\s*'(gates|bridges_off|predicts_text|kind)'")
    hits = [f"{f.name}:{i}" for f in PKG.glob('*.py') if f.stem != 'generators'
            for i, line in enumerate(f.read_text().splitlines(), 1) if pat.search(line)]
    assert not hits, hits
