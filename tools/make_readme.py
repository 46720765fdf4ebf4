"""Write README.md from nbs/index.ipynb without Quarto (what `nbdev_readme` does with Quarto).

Markdown cells are copied, visible code cells become ```python blocks followed by their text
output, `#| hide` cells are dropped, and image links relative to nbs/ are rewritten relative to the
repository root. `--check` exits 1 when README.md differs from what the notebook gives.

Usage: python tools/make_readme.py [--check]
"""
import argparse, json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = "<!-- This file is generated from nbs/index.ipynb by tools/make_readme.py; edit the notebook, not this file. -->\n\n"

def readme_text(nb_path:Path=ROOT/'nbs'/'index.ipynb')->str:
    nb = json.loads(nb_path.read_text())
    parts = []
    for c in nb['cells']:
        src = ''.join(c['source']).rstrip()
        if c['cell_type'] == 'markdown':
            parts.append(re.sub(r'\]\((?!https?:|#|/)([^)]+)\)', lambda m: f"](nbs/{m.group(1)})", src))
        elif c['cell_type'] == 'code':
            lines = src.splitlines()
            flags = [l for l in lines if l.startswith('#|')]
            if any(('hide' in f) or ('include: false' in f) for f in flags): continue
            body = '\n'.join(l for l in lines if not l.startswith('#|')).strip()
            if body and not any('echo: false' in f for f in flags): parts.append(f"```python\n{body}\n```")
            for o in c.get('outputs', []):
                txt = ''.join(o.get('text', '') or o.get('data', {}).get('text/plain', ''))
                if txt.strip(): parts.append('    ' + txt.rstrip().replace('\n', '\n    '))
    return HEADER + '\n\n'.join(p for p in parts if p) + '\n'

def main(argv=None):
    ap = argparse.ArgumentParser(description='Generate README.md from nbs/index.ipynb')
    ap.add_argument('--check', action='store_true', help='fail if README.md is out of date')
    a = ap.parse_args(argv)
    want, path = readme_text(), ROOT/'README.md'
    if a.check:
        if not path.exists() or path.read_text() != want:
            print('README.md is out of date with nbs/index.ipynb: run python tools/make_readme.py'); sys.exit(1)
        print('README.md is in sync with nbs/index.ipynb'); return
    path.write_text(want); print('wrote README.md')

if __name__ == '__main__': main()
