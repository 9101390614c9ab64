#!/usr/bin/env python
"""Execute the notebooks and store them with their outputs, so the walkthrough can be read without running it.

    python tools/refresh_notebooks.py                 # every notebook but 15a_main, skipping `#| slow` and `#| heavy` cells
    python tools/refresh_notebooks.py --slow          # slow cells too (they train the cpu-preset demo once: ~8 minutes)
    python tools/refresh_notebooks.py --heavy 09 15a  # and the multi-run reproductions of these notebooks (~20 minutes each)
    python tools/refresh_notebooks.py --keep 12a      # skipped (slow, heavy) cells keep the outputs stored with them

Each notebook runs in a fresh process, in its own folder, as `nbdev_test` runs it; a notebook whose cell raises is left
unchanged and the command exits non-zero. Afterwards run `nbdev_clean` (it strips metadata, keeps the outputs) and commit.
"""
import argparse, os, re, subprocess, sys, time
from pathlib import Path

from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell

NBS = Path(__file__).resolve().parent.parent/'nbs'
NO_OUTPUTS = {'15a_main'}        # the `python -m naruto_core` entry point: nothing to show

def flags(source: str) -> set:
    "The nbdev directives of a cell (`#| slow`, `#| export`, ...) as a set of names."
    return {m.group(1) for m in re.finditer(r'^#\|\s*([\w-]+)', source, re.M)}

def refresh(path: Path, slow: bool, heavy: bool, keep: bool = False) -> float:
    "Run notebook `path` (slow and heavy cells when asked) and write it back with its outputs; seconds taken."
    skip = {'notest'} | (set() if slow or heavy else {'slow'}) | (set() if heavy else {'heavy'})
    def no_eval(cell):
        if cell.cell_type != 'code': return True
        if 'nbdev_export(' in cell.source or re.search(r'^#\|\s*eval:\s*false', cell.source, re.M | re.I): return True
        if flags(cell.source) & skip:
            if not keep: cell.outputs = []   # a skipped cell shows no stale output (unless asked to keep it: its code is unchanged)
            return True
        return False
    nb = read_nb(path)
    shell = CaptureShell(path, mpl_format='png')
    t0, cwd = time.time(), os.getcwd()
    os.chdir(path.parent)
    try: shell.run_all(nb, exc_stop=True, preproc=no_eval)
    finally: os.chdir(cwd)
    write_nb(nb, path)
    return time.time() - t0

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('names', nargs='*', help='notebook name prefixes, e.g. 03 09_callosal (default: all)')
    p.add_argument('--slow', action='store_true', help='also run the `#| slow` cells')
    p.add_argument('--heavy', action='store_true', help='also run the `#| slow` and `#| heavy` cells')
    p.add_argument('--keep', action='store_true', help='skipped cells keep their stored outputs (for cells whose code did not change)')
    p.add_argument('--one', help=argparse.SUPPRESS)      # run this one notebook in this process
    a = p.parse_args(argv)
    for k, v in dict(HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1', WANDB_MODE='disabled').items(): os.environ.setdefault(k, v)
    if a.one: print(f"{Path(a.one).name}: {refresh(Path(a.one), a.slow, a.heavy, a.keep):.0f} s", flush=True); return
    nbs = [f for f in sorted(NBS.glob('*.ipynb')) if not f.name.startswith('_') and f.stem not in NO_OUTPUTS
           and (not a.names or any(f.stem.startswith(n) for n in a.names))]
    failed = []
    for f in nbs:
        cmd = [sys.executable, __file__, '--one', str(f)] + (['--slow'] if a.slow else []) + (['--heavy'] if a.heavy else []) + (['--keep'] if a.keep else [])
        if subprocess.run(cmd).returncode: failed.append(f.name)
    if failed: sys.exit(f"failed: {', '.join(failed)}")

if __name__ == '__main__': main()
